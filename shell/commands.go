package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/term"
)

// loadForCommand parses -config for a subcommand; on error it prints it and
// returns the exit code.
func loadForCommand(name string, args []string, extra func(*flag.FlagSet)) (Config, *flag.FlagSet, int) {
	fs := flag.NewFlagSet("bitville-apmd "+name, flag.ContinueOnError)
	configFile := fs.String("config", defaultConfigFile, "the configuration file")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fs, exitConfig
	}
	cfg, err := LoadConfig(*configFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bitville-apmd %s: configuration error: %v\n", name, err)
		return cfg, fs, exitConfig
	}
	return cfg, fs, exitOK
}

// runCheckConfig validates the configuration and prints it as the daemon
// would use it, secrets masked.
func runCheckConfig(args []string, out io.Writer) int {
	cfg, _, code := loadForCommand("check-config", args, nil)
	if code != exitOK {
		return code
	}
	if cfg.Forward.APIKey != "" {
		cfg.Forward.APIKey = "***"
	}
	data, err := toml.Marshal(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bitville-apmd check-config:", err)
		return exitConfig
	}
	fmt.Fprintf(out, "# %s is valid; the effective configuration (defaults filled in, paths resolved):\n%s", cfg.file, data)
	return exitOK
}

// runInspect shows the spool through core's read-only scan. Safe while the
// daemon runs. With -verify it checks every CRC and exits 1 on damage.
func runInspect(args []string, out io.Writer) int {
	var verify, asJSON bool
	cfg, _, code := loadForCommand("inspect", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&verify, "verify", false, "read every segment and check every CRC")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	})
	if code != exitOK {
		return code
	}
	opts := core.ScanOptions{Verify: verify}
	if verify && term.IsTerminal(int(os.Stderr.Fd())) {
		opts.Progress = func(done, total int) { fmt.Fprintf(os.Stderr, "\rverifying %d/%d segments", done, total) }
	}
	rep, err := core.Scan(fsadapter.NewOS(cfg.Buffer.Dir), "/", opts)
	if opts.Progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bitville-apmd inspect: cannot read the spool %s: %v\n", cfg.Buffer.Dir, err)
		return exitNotSaved
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printInspect(out, cfg.Buffer.Dir, rep, verify)
	}
	if verify && rep.Damaged > 0 {
		return exitNotSaved
	}
	return exitOK
}

func printInspect(out io.Writer, dir string, rep core.ScanReport, verify bool) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	age := "-"
	if !rep.Oldest.IsZero() {
		age = time.Since(rep.Oldest).Round(time.Second).String()
	}
	meta := fmt.Sprintf("agent %s, format %d, reserved through %d", rep.AgentID, rep.FormatVersion, rep.ReservedThrough)
	if rep.MetaProblem != "" {
		meta = "unreadable: " + rep.MetaProblem
	}
	for _, row := range [][2]string{
		{"spool", dir}, {"spool.meta", meta},
		{"segments", fmt.Sprint(len(rep.Segments))}, {"records", fmt.Sprint(rep.Records)}, {"bytes", fmt.Sprint(rep.Bytes)},
		{"sequence range", fmt.Sprintf("%d-%d", rep.FirstSeq, rep.LastSeq)}, {"oldest record age", age},
		{"temp files", fmt.Sprintf("%d (%d bytes)", rep.TempFiles, rep.TempBytes)},
		{"quarantine/", fmt.Sprintf("%d files, %d bytes, %d records", rep.Quarantine.Files, rep.Quarantine.Bytes, rep.Quarantine.Records)},
		{"dead-letter/", fmt.Sprintf("%d files, %d bytes, %d records", rep.DeadLetter.Files, rep.DeadLetter.Bytes, rep.DeadLetter.Records)},
		{"damaged segments", fmt.Sprint(rep.Damaged)},
	} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	w.Flush()
	for _, s := range rep.Segments {
		if s.Problem == "" {
			continue
		}
		fmt.Fprintf(out, "DAMAGED %s: %s", filepath.Join(dir, s.Name), s.Problem)
		for _, d := range s.Damage {
			fmt.Fprintf(out, "; bad bytes at offset %d (%d bytes)", d.Offset, d.Bytes)
		}
		fmt.Fprintln(out)
	}
	if verify && rep.Damaged == 0 {
		fmt.Fprintln(out, "verify: every CRC checks out")
	}
}

// runRequeue puts dead-lettered (default) or quarantined records back into
// the spool. It refuses to run while the daemon holds the spool.
func runRequeue(args []string, out io.Writer) int {
	var quarantine, deadLetter bool
	cfg, fs, code := loadForCommand("requeue", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&deadLetter, "dead-letter", false, "requeue dead-letter/ (the default)")
		fs.BoolVar(&quarantine, "quarantine", false, "requeue the salvageable records of quarantine/")
	})
	if code != exitOK {
		return code
	}
	lock, err := lockSpool(cfg.Buffer.Dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bitville-apmd requeue: the spool %s is in use (%v): stop the daemon first\n", cfg.Buffer.Dir, err)
		return exitSpoolLocked
	}
	defer lock.Close()
	folder := "dead-letter"
	if quarantine {
		folder = "quarantine"
	}
	files, err := requeueSources(cfg.Buffer.Dir, folder, fs.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "bitville-apmd requeue:", err)
		return exitConfig
	}
	bcfg, _ := cfg.BufferConfig(randReader())
	rep, err := core.Requeue(fsadapter.NewOS(cfg.Buffer.Dir), "/", bcfg, files, time.Now())
	fmt.Fprintf(out, "requeued %d records from %d files into %d segments; skipped %d already in the spool; %d damaged stretches lost\n",
		rep.Records, rep.Files, rep.Segments, rep.Skipped, rep.Damaged)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bitville-apmd requeue:", err)
		return exitNotSaved
	}
	return exitOK
}

// requeueSources names the files to requeue, relative to the spool root:
// the ones given (which must be in the folder), or all of the folder's.
func requeueSources(spool, folder string, given []string) ([]string, error) {
	if len(given) == 0 {
		entries, err := os.ReadDir(filepath.Join(spool, folder))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				given = append(given, e.Name())
			}
		}
	}
	var out []string
	for _, g := range given {
		name := filepath.Base(g)
		if g != name && filepath.Clean(filepath.Dir(g)) != filepath.Join(spool, folder) && filepath.Base(filepath.Dir(g)) != folder {
			return nil, fmt.Errorf("%s is not in %s", g, filepath.Join(spool, folder))
		}
		if strings.HasSuffix(name, ".tmp") {
			continue
		}
		out = append(out, "/"+folder+"/"+name)
	}
	sort.Strings(out)
	return out, nil
}
