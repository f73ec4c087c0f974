// Command simulate runs the daemon's core (framing, buffer, delivery
// policy) against a simulated listener and a faulty, crashable filesystem,
// with a virtual clock and one seeded random source, and checks its
// promises after every step: `go run ./simulate` runs every scenario with
// its default seeds, prints a table, and exits 1 on any violation, naming
// the command that reproduces it. The engine is package sim; this file only
// parses flags, runs seeds in parallel and reports.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bitville/apmd/simulate/sim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// job is one scenario with one seed; results keep the jobs' order, so the
// output does not depend on which worker finished first.
type job struct {
	sc   sim.Scenario
	seed uint64
}

type flags struct {
	scenario, traffic string
	seed              uint64
	seeds, workers    int
	list, verbose     bool
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.scenario, "scenario", "", "run only these scenarios (comma-separated names; see -list)")
	fs.Uint64Var(&f.seed, "seed", 0, "run only this seed (default: seeds 1..N, N from -seeds or each scenario's own count)")
	fs.IntVar(&f.seeds, "seeds", 0, "seeds per scenario (default: each scenario's own count)")
	fs.StringVar(&f.traffic, "traffic", "", "a traffic recording made by the daemon's [record], for recorded-traffic (default: the one in simulate/sim/testdata)")
	fs.BoolVar(&f.list, "list", false, "print the scenario names, one per line, and exit")
	fs.BoolVar(&f.verbose, "v", false, "print the step trace (runs one job at a time)")
	fs.IntVar(&f.workers, "j", runtime.GOMAXPROCS(0), "seeds run in parallel")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return f, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "simulate:", err)
		return 2
	}
	if f.list {
		for _, sc := range sim.Scenarios() {
			fmt.Fprintln(stdout, sc.Name)
		}
		return 0
	}
	jobs, err := plan(f)
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return 2
	}
	opts := sim.Options{}
	if f.traffic != "" {
		if opts.Recording, err = os.ReadFile(f.traffic); err != nil {
			fmt.Fprintln(stderr, "simulate:", err)
			return 2
		}
	}
	if f.verbose {
		opts.Trace = stdout
		f.workers = 1
	}
	start := time.Now()
	results, times := runJobs(jobs, opts, max(f.workers, 1), newProgress(stderr, len(jobs)))
	return report(stdout, jobs, results, times, time.Since(start))
}

// plan turns the flags into the list of jobs.
func plan(f flags) ([]job, error) {
	scs := sim.Scenarios()
	if f.scenario != "" {
		scs = nil
		for _, name := range strings.Split(f.scenario, ",") {
			sc, ok := sim.Lookup(strings.TrimSpace(name))
			if !ok {
				return nil, fmt.Errorf("unknown scenario %q (see -list)", name)
			}
			scs = append(scs, sc)
		}
	}
	var jobs []job
	for _, sc := range scs {
		if f.seed != 0 {
			jobs = append(jobs, job{sc, f.seed})
			continue
		}
		n := sc.Seeds
		if f.seeds > 0 {
			n = f.seeds
		}
		for s := 1; s <= n; s++ {
			jobs = append(jobs, job{sc, uint64(s)})
		}
	}
	return jobs, nil
}

// runJobs runs the jobs on a pool of workers; results[i] is jobs[i]'s.
// Costly jobs (crash-point enumerations) go first so that they do not
// finish last on one core.
func runJobs(jobs []job, opts sim.Options, workers int, prog *progress) ([]sim.Result, []time.Duration) {
	results := make([]sim.Result, len(jobs))
	times := make([]time.Duration, len(jobs))
	order := make(chan int, len(jobs))
	for i := range jobs {
		if len(jobs[i].sc.Enumerate) > 0 {
			order <- i
		}
	}
	for i := range jobs {
		if len(jobs[i].sc.Enumerate) == 0 {
			order <- i
		}
	}
	close(order)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range order {
				began := time.Now()
				results[i] = sim.Run(jobs[i].sc, jobs[i].seed, opts)
				times[i] = time.Since(began)
				prog.done(results[i].ViolationsTotal)
			}
		}()
	}
	wg.Wait()
	prog.finish()
	return results, times
}

// progress shows how far a run is: one line rewritten in place on a
// terminal, a plain line every few seconds otherwise (CI logs).
type progress struct {
	mu         sync.Mutex
	w          io.Writer
	tty        bool
	total      int
	finished   int
	violations int
	start      time.Time
	lastPlain  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			tty = fi.Mode()&os.ModeCharDevice != 0
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, total: total, start: now, lastPlain: now}
}

func (p *progress) done(violations int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	p.violations += violations
	line := fmt.Sprintf("simulate: %d/%d runs, %d violations, %s", p.finished, p.total, p.violations, time.Since(p.start).Round(100*time.Millisecond))
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	case time.Since(p.lastPlain) >= 5*time.Second || p.finished == p.total:
		p.lastPlain = time.Now()
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// row is one scenario's line in the table.
type row struct {
	name                             string
	seeds, records, delivered, lost  int
	crashPoints, crashes, violations int
	dropped                          []uint64
	elapsed                          time.Duration
	digest                           string
}

// report prints the table, the digests and every violation with the
// command that reproduces it; it returns the exit code.
func report(w io.Writer, jobs []job, results []sim.Result, times []time.Duration, elapsed time.Duration) int {
	rows, all := summarize(jobs, results, times)
	const format = "%-21s %5v %8v %9v  %-36s %5v %7v %6v %4v %7v  %s\n"
	fmt.Fprintf(w, format, "scenario", "seeds", "records", "delivered", "dropped by reason", "lost", "crashes", "points", "viol", "time", "digest")
	for _, r := range rows {
		fmt.Fprintf(w, format, r.name, r.seeds, r.records, r.delivered, dropped(r.dropped), r.lost, r.crashes, r.crashPoints,
			r.violations, r.elapsed.Round(100*time.Millisecond), r.digest[:12])
	}
	t := summarizeAll(rows)
	fmt.Fprintf(w, format, "total", t.seeds, t.records, t.delivered, dropped(t.dropped), t.lost, t.crashes, t.crashPoints,
		t.violations, t.elapsed.Round(100*time.Millisecond), hex.EncodeToString(all[:])[:12])
	fmt.Fprintf(w, "\n%d runs in %s; combined trace digest sha256:%s\n", len(jobs), elapsed.Round(10*time.Millisecond), hex.EncodeToString(all[:]))
	if len(jobs) == 1 {
		fmt.Fprintf(w, "trace sha256:%s (%d steps)\n", results[0].Digest, results[0].Steps)
	}
	printNotes(w, results)
	failed := 0
	for i, r := range results {
		if r.ViolationsTotal == 0 {
			continue
		}
		failed++
		fmt.Fprintf(w, "\nVIOLATION in %s seed %d (%d in all); reproduce with:\n  go run ./simulate -scenario %s -seed %d -v\n",
			r.Scenario, r.Seed, r.ViolationsTotal, jobs[i].sc.Name, r.Seed)
		for _, v := range r.Violations {
			fmt.Fprintf(w, "  %s\n", v)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "\n%d of %d runs broke an invariant\n", failed, len(jobs))
		return 1
	}
	fmt.Fprintln(w, "no violations")
	return 0
}

// summarize folds results into one row per scenario, in job order, and
// the digest of every run's digest.
func summarize(jobs []job, results []sim.Result, times []time.Duration) ([]row, [32]byte) {
	var rows []row
	h := sha256.New()
	rowHash := map[string]hash.Hash{}
	index := map[string]int{}
	for i, r := range results {
		name := jobs[i].sc.Name
		k, ok := index[name]
		if !ok {
			k = len(rows)
			index[name] = k
			rows = append(rows, row{name: name, dropped: make([]uint64, len(r.Dropped))})
			rowHash[name] = sha256.New()
		}
		rows[k].add(row{seeds: 1, records: r.Records, delivered: r.Delivered, lost: r.LostToCrash,
			crashPoints: r.CrashPoints, crashes: r.Crashes, violations: r.ViolationsTotal,
			elapsed: times[i], dropped: r.Dropped})
		fmt.Fprintf(rowHash[name], "%d %s\n", r.Seed, r.Digest)
		fmt.Fprintf(h, "%s %d %s\n", name, r.Seed, r.Digest)
	}
	for i := range rows {
		rows[i].digest = hex.EncodeToString(rowHash[rows[i].name].Sum(nil))
	}
	var all [32]byte
	copy(all[:], h.Sum(nil))
	return rows, all
}

func summarizeAll(rows []row) row {
	var t row
	for _, r := range rows {
		t.add(r)
	}
	return t
}

// add sums another row's counts into x.
func (x *row) add(r row) {
	x.seeds += r.seeds
	x.records += r.records
	x.delivered += r.delivered
	x.lost += r.lost
	x.crashes += r.crashes
	x.crashPoints += r.crashPoints
	x.violations += r.violations
	x.elapsed += r.elapsed
	if x.dropped == nil {
		x.dropped = make([]uint64, len(r.dropped))
	}
	for j, d := range r.dropped {
		x.dropped[j] += d
	}
}

// dropped prints the non-zero drop counts, short reason names first.
func dropped(counts []uint64) string {
	var parts []string
	for i, n := range counts {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", shortReason[i], n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// shortReason abbreviates core.DropReasons, in its order, to fit a column.
var shortReason = []string{"full_old", "full_new", "mem_full", "too_large", "poison", "quar_evict", "dl_evict", "corrupt"}

// printNotes prints the observations of the first runs of each scenario
// that made any: behaviour that is not a violation but deserves a look.
func printNotes(w io.Writer, results []sim.Result) {
	shown := map[string]int{}
	for _, r := range results {
		if len(r.Notes) == 0 || shown[r.Scenario] >= 2 {
			continue
		}
		shown[r.Scenario]++
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note: %s seed %d: %s\n", r.Scenario, r.Seed, n)
		}
	}
}
