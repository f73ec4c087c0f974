// Command loadgen benchmarks bitville-apmd from the outside, as an operator
// would: it builds (or takes) the daemon binary, runs it with temporary
// configs on loopback and Unix sockets only, and prints figures side by side
// with baselines measured in the same run. Figures, not assertions.
//
//	go run ./shell/loadgen                          # everything, default sizes
//	go run ./shell/loadgen -n 50000 -backlog 64MiB  # a quick check
//	go run ./shell/loadgen -phases 3,5 -daemon bin/bitville-apmd
//
// Phases: 1 ingest while spilling, 2 bytes on disk per payload byte,
// 3 drain with and without gzip, 4 SIGTERM with 200k records in memory,
// 5 RSS while a backlog drains. Progress goes to stderr, the table to stdout.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// options are the command-line flags.
type options struct {
	n       int
	size    int
	conns   int
	backlog int64
	phases  map[int]bool
	daemon  string
}

func main() { os.Exit(run(os.Args[1:])) }

// run parses flags, runs the selected phases and prints the table.
func run(args []string) int {
	opt, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}
	e, err := newEnv(opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	defer e.cleanup()
	go e.onInterrupt()
	if err := e.build(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	failed := e.runPhases()
	e.printTable(os.Stdout)
	if failed {
		return 1
	}
	return 0
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var o options
	var backlog, phases string
	fs.IntVar(&o.n, "n", 1_000_000, "records sent in phases 1-3")
	fs.IntVar(&o.size, "size", 1024, "bytes per record (the JSON object, without its newline)")
	fs.IntVar(&o.conns, "c", 4, "client connections")
	fs.StringVar(&backlog, "backlog", "2GiB", "backlog of record bytes for phase 5 (e.g. 64MiB, 2GiB)")
	fs.StringVar(&phases, "phases", "all", "comma list of phases to run: 1,2,3,4,5 or all")
	fs.StringVar(&o.daemon, "daemon", "", "daemon binary to test (default: go build ./shell into a temp dir)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.backlog, err = parseSize(backlog); err != nil {
		return o, fmt.Errorf("-backlog: %w", err)
	}
	if o.phases, err = parsePhases(phases); err != nil {
		return o, fmt.Errorf("-phases: %w", err)
	}
	switch {
	case o.size < minRecordSize || o.size > 1<<20:
		return o, fmt.Errorf("-size must be between %d and 1048576 (max_record_bytes)", minRecordSize)
	case o.conns < 1 || o.n < o.conns:
		return o, errors.New("-c must be at least 1 and -n at least -c")
	case o.backlog < int64(o.size):
		return o, errors.New("-backlog must hold at least one record")
	}
	return o, nil
}

// parseSize reads a byte count: a plain number or one ending in KiB, MiB or GiB.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("want a positive size such as 64MiB, got %q", s)
	}
	return v * mult, nil
}

func parsePhases(s string) (map[int]bool, error) {
	m := map[int]bool{}
	if s == "all" {
		s = "1,2,3,4,5"
	}
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > 5 {
			return nil, fmt.Errorf("want phase numbers 1 to 5, got %q", f)
		}
		m[v] = true
	}
	return m, nil
}

// env is one run: its temp dirs, daemon binary, live daemons and results.
type env struct {
	opt     options
	root    string // configs, logs, spools, the built daemon
	sockDir string // short, for Unix socket paths
	bin     string
	rows    []row
	notes   []string
	backlog *spool // a filled spool left by phase 1 for phase 3

	mu          sync.Mutex
	procs       []*daemonProc
	cleaned     bool
	interrupted atomic.Bool // Ctrl-C: phases fail as their daemon is killed; say nothing
}

// spool is a spool directory holding records (the daemon stopped).
type spool struct {
	dir     string
	records int64
}

func newEnv(opt options) (*env, error) {
	root, err := os.MkdirTemp("", "apmd-loadgen-")
	if err != nil {
		return nil, err
	}
	e := &env{opt: opt, root: root, sockDir: root, bin: opt.daemon}
	if len(root) > 80 { // Unix socket paths are short
		if e.sockDir, err = os.MkdirTemp("/tmp", "lg"); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	return e, nil
}

// build compiles the daemon into the temp dir unless -daemon was given.
func (e *env) build() error {
	if e.bin != "" {
		abs, err := filepath.Abs(e.bin)
		e.bin = abs
		return err
	}
	e.bin = filepath.Join(e.root, "bitville-apmd")
	fmt.Fprintln(os.Stderr, "building the daemon: go build -o", e.bin, "github.com/bitville/apmd/shell")
	cmd := exec.Command("go", "build", "-o", e.bin, "github.com/bitville/apmd/shell")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build failed (%v): run loadgen from the module root, or pass -daemon PATH", err)
	}
	return nil
}

// track registers a daemon to kill at cleanup.
func (e *env) track(p *daemonProc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.procs = append(e.procs, p)
}

// cleanup kills the daemons still running and removes the temp dirs.
func (e *env) cleanup() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cleaned {
		return
	}
	e.cleaned = true
	for _, p := range e.procs {
		p.kill()
	}
	os.RemoveAll(e.root)
	os.RemoveAll(e.sockDir)
}

// onInterrupt cleans up and exits on Ctrl-C or SIGTERM.
func (e *env) onInterrupt() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	sig := <-ch
	e.interrupted.Store(true)
	fmt.Fprintf(os.Stderr, "\nloadgen: %v: killing the daemon and removing %s\n", sig, e.root)
	e.cleanup()
	os.Exit(130)
}

// runPhases runs the selected phases in order; it reports whether one failed.
func (e *env) runPhases() bool {
	phases := map[int]func() error{1: e.phaseIngest, 2: e.phaseDisk, 3: e.phaseDrain, 4: e.phaseSigterm, 5: e.phaseRSS}
	nums := make([]int, 0, len(e.opt.phases))
	for k := range e.opt.phases {
		nums = append(nums, k)
	}
	sort.Ints(nums)
	failed := false
	for _, k := range nums {
		fmt.Fprintf(os.Stderr, "phase %d: %s\n", k, phaseNames[k])
		if err := phases[k](); err != nil && !e.interrupted.Load() {
			failed = true
			fmt.Fprintf(os.Stderr, "phase %d failed: %v\n", k, err)
			e.rows = append(e.rows, row{phase: fmt.Sprintf("%d %s", k, phaseNames[k]), figure: "error (see stderr)", verdict: "failed"})
		}
	}
	return failed
}

var phaseNames = map[int]string{1: "ingest while spilling", 2: "disk bytes per payload byte",
	3: "drain", 4: "SIGTERM, 200k in memory", 5: "RSS while a backlog drains"}
