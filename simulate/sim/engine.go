package sim

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
)

// Limits of one run, so that no scenario or seed can loop forever.
const (
	maxSteps     = 2_000_000
	maxOpenTries = 30
	maxDrain     = 8 * time.Hour // the final drain must finish within this much virtual time
	idleTick     = 5 * time.Second
)

// Options are the host's choices for a run; the zero value is a plain run.
type Options struct {
	// Trace, if set, receives the step trace (simulate -v).
	Trace io.Writer
	// Recording is the traffic that replay scenarios use; nil: the small
	// recording shipped in testdata.
	Recording []byte
	// Bugs plants core's known bugs (tests only).
	Bugs core.Bug
	// PlantMapOrder makes the traffic generator pick connections by map
	// iteration: a planted nondeterminism the digest must reveal (tests only).
	PlantMapOrder bool

	// Set by crash-point enumeration for its sub-runs.
	crashAtOp int
	crashKind fsadapter.CrashKind
	tearSeed  int64
}

// Engine runs one scenario with one seed. It is not safe for concurrent
// use; runs in parallel each have their own Engine.
type Engine struct {
	name  string
	seed  uint64
	opts  Options
	setup Setup
	rng   *rand.Rand

	coreEntropy, policyEntropy io.Reader

	crash *fsadapter.CrashFS
	quota *quotaFS
	fault *fsadapter.FaultFS
	rules []*mirrorRule // the FaultFS's rules, mirrored to know which fired

	now, coreClock time.Time // virtual time; latest time core was given
	wallOff        time.Duration
	nextTick       time.Time
	heartbeat      time.Time     // the next idle tick
	obstructedAt   time.Time     // latest step at which a spill was failing or had no room (core's clock)
	obstructedV    time.Time     // the same, in virtual time
	maxTrueAge     time.Duration // the longest a record stayed in memory in virtual time, past the age bound

	src      source
	listener Listener
	led      *ledger
	tr       *tracer

	proc    *process
	procs   int
	carried []recID // records found on disk when the last process ended
	dying   bool    // the process reached its crash point: it makes no more calls
	killOn  func(kind fsadapter.OpKind, path string) bool
	killAs  fsadapter.CrashKind

	step         int
	event        string
	overCapOK    bool // a graceful stop may have left the disk over its cap
	workloadOps  int  // filesystem operations of the script, before the final drain
	batchCap     int  // > 0: scripted deliveries ask for at most this many records
	opsMarked    int  // FaultFS ops at the last disk measurement
	lastOpenErr  string
	crashLooping bool // Open keeps failing: reported once
	sameTime     int  // steps in a row at the same virtual time
	lastStepAt   time.Time

	// Totals for the end-of-run checks.
	unattributedDrops, vanished int

	res Result
}

// newEngine derives every random source from the scenario name and seed.
func newEngine(sc Scenario, seed uint64, opts Options) *Engine {
	key := sha256.Sum256(fmt.Appendf(nil, "bitville-apmd-sim\x00%s\x00%d", sc.Name, seed))
	sub := func(label string) *rand.ChaCha8 {
		return rand.NewChaCha8(sha256.Sum256(append(key[:], label...)))
	}
	e := &Engine{
		name: sc.Name, seed: seed, opts: opts, setup: DefaultSetup(),
		rng:         rand.New(sub("engine")),
		coreEntropy: sub("core"), policyEntropy: sub("policy"),
		now: epoch, coreClock: epoch, nextTick: epoch,
		led: newLedger(), tr: newTracer(opts.Trace),
		res: Result{Scenario: sc.Name, Seed: seed, Dropped: make([]uint64, len(core.DropReasons)),
			FaultsByKind: make([][3]int, fsadapter.OpChmod+1)},
	}
	tear := int64(e.rng.Uint64() >> 1)
	if opts.tearSeed != 0 {
		tear = opts.tearSeed
	}
	e.crash = fsadapter.NewCrashFS(tear)
	e.quota = &quotaFS{Fs: e.crash, crash: e.crash}
	e.fault = fsadapter.NewFaultFS(e.quota)
	e.fault.OnOp = e.onOp
	if opts.crashAtOp > 0 {
		e.addRule(fsadapter.Rule{From: opts.crashAtOp}, true)
	}
	return e
}

// maxSameTime is how many steps may run without virtual time moving: more
// means a livelock (say, a retry with no wait).
const maxSameTime = 10_000

// wall is the time the host's clock shows: virtual time plus any step.
func (e *Engine) wall() time.Time {
	w := e.now.Add(e.wallOff)
	if w.After(e.coreClock) {
		e.coreClock = w
	}
	return w
}

// alive reports whether a process runs and may make calls.
func (e *Engine) alive() bool { return e.proc != nil && !e.dying }

// violate records a broken invariant at the current step.
func (e *Engine) violate(invariant, format string, args ...any) {
	detail := fmt.Sprintf(format, args...)
	e.res.ViolationsTotal++
	if len(e.res.Violations) < maxViolations {
		e.res.Violations = append(e.res.Violations, Violation{Step: e.step, Invariant: invariant, Detail: detail})
	}
	e.tr.line("!violation %s: %s", invariant, detail)
}

// observe records a note: not a violation, but worth reading.
func (e *Engine) observe(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(e.res.Notes) < maxViolations {
		e.res.Notes = append(e.res.Notes, msg)
	}
	e.tr.line("!note %s", msg)
}

// clockLag is how far the host's clock is behind the latest time core was
// given: while it is positive, core's clamped clock stands still.
func (e *Engine) clockLag() time.Duration {
	return max(e.coreClock.Sub(e.now.Add(e.wallOff)), 0)
}

// halted reports whether the run must stop: too many steps or violations.
func (e *Engine) halted() bool {
	return e.step >= maxSteps || e.res.ViolationsTotal >= 4*maxViolations
}

// mirrorRule is a FaultFS rule as the engine armed it, with its own count
// of firings (the FaultFS does not report them).
type mirrorRule struct {
	fsadapter.Rule
	fired int
	crash bool // the crash point's rule: not a fault, never re-armed
}

func (e *Engine) addRule(r fsadapter.Rule, crash bool) {
	e.rules = append(e.rules, &mirrorRule{Rule: r, crash: crash})
	e.fault.AddRule(r)
}

// onOp sees every filesystem operation of the process before it runs.
func (e *Engine) onOp(index int, kind fsadapter.OpKind, path string) {
	if kind == fsadapter.OpRead && strings.HasSuffix(path, tmpSuffix) {
		e.violate("no-temp-read", "op %d reads temp file %s", index, path)
	}
	e.mirrorTrip(index, kind, path)
	if e.opts.crashAtOp > 0 && index >= e.opts.crashAtOp && !e.dying {
		e.dying = true
		e.killAs = e.opts.crashKind
	}
	if e.killOn != nil && e.killOn(kind, path) {
		e.killOn = nil
		e.dying = true
		e.addRule(fsadapter.Rule{From: index + 1}, true)
	}
}

// mirrorTrip replays FaultFS's choice: the first armed rule that matches.
func (e *Engine) mirrorTrip(index int, kind fsadapter.OpKind, path string) {
	for _, r := range e.rules {
		if r.Times != 0 && r.fired >= r.Times {
			continue
		}
		if ruleMatches(r.Rule, index, kind, path) {
			r.fired++
			if !r.crash {
				e.res.FaultsFired++
				e.res.FaultsByKind[kind][errnoSlot(r.Err)]++
			}
			return
		}
	}
}

func ruleMatches(r fsadapter.Rule, index int, kind fsadapter.OpKind, path string) bool {
	switch {
	case r.At != 0 && index != r.At, r.From != 0 && index < r.From,
		r.Kind != fsadapter.OpAny && kind != r.Kind:
		return false
	}
	return r.Path == "" || strings.Contains(path, r.Path)
}

// errnoSlot files an injected error under EIO (the FaultFS default),
// ENOSPC or other.
func errnoSlot(err error) int {
	switch {
	case err == nil || errors.Is(err, syscall.EIO):
		return 0
	case errors.Is(err, syscall.ENOSPC):
		return 1
	}
	return 2
}

// faultsArmed reports whether any injected fault may still fire.
func (e *Engine) faultsArmed() bool {
	for _, r := range e.rules {
		if !r.crash && (r.Times == 0 || r.fired < r.Times) {
			return true
		}
	}
	return false
}

// rearm rebuilds the FaultFS rules after a crash: the crash point's rule
// goes, injected faults that may still fire stay (a failing disk stays
// failing across a restart).
func (e *Engine) rearm() {
	e.fault.ClearRules()
	kept := e.rules[:0]
	for _, r := range e.rules {
		if r.crash || (r.Times != 0 && r.fired >= r.Times) {
			continue
		}
		if r.Times != 0 {
			r.Times -= r.fired
			r.fired = 0
		}
		kept = append(kept, r)
		e.fault.AddRule(r.Rule)
	}
	e.rules = kept
}

// clearFaults disarms every injected fault and the quota.
func (e *Engine) clearFaults() {
	e.fault.ClearRules()
	e.rules = nil
	e.quota.quota = 0
	e.killOn = nil
}
