package sim

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bitville/apmd/fsadapter"
)

// defaultRecording is traffic recorded by the daemon's [record] (see
// testdata/README.md for how it was made).
//
//go:embed testdata/daemon.rec
var defaultRecording []byte

// DefaultRecording returns the shipped recording.
func DefaultRecording() []byte { return defaultRecording }

// Scenario is a named, seeded test of the daemon's core: a setup, and
// either a script run once or a workload whose every filesystem operation
// is a crash point.
type Scenario struct {
	Name  string
	About string
	Seeds int // how many seeds a full run tries

	// Setup adjusts the defaults; it may draw from rng.
	Setup func(s *Setup, rng *rand.Rand)
	// Script drives the run; the final drain follows it.
	Script func(e *Engine)
	// Enumerate, if set, makes Script a crash-point workload: it runs once
	// to count its filesystem operations, then once per operation and
	// crash mode, crashed at that operation.
	Enumerate []CrashMode
}

// CrashMode is one way to crash at an operation: a process kill, or a
// power loss with tears drawn from one seed.
type CrashMode struct {
	Kind fsadapter.CrashKind
	Tear string // names the tear seed; two names give two different tears
}

// Run runs one scenario with one seed and returns what it found. The same
// scenario, seed and options give the same Result, digest included.
func Run(sc Scenario, seed uint64, opts Options) Result {
	if len(sc.Enumerate) > 0 {
		return runEnumeration(sc, seed, opts)
	}
	return runOnce(sc, seed, opts)
}

// runOnce runs the script, then the final drain and checks.
func runOnce(sc Scenario, seed uint64, opts Options) Result {
	return runOnceEngine(sc, seed, opts, nil)
}

// runOnceEngine is runOnce that also hands the engine to seen.
func runOnceEngine(sc Scenario, seed uint64, opts Options, seen func(*Engine)) Result {
	e := newEngine(sc, seed, opts)
	if seen != nil {
		seen(e)
	}
	if sc.Setup != nil {
		sc.Setup(&e.setup, e.rng)
	}
	e.listener = e.setup.Listener
	if err := e.useTraffic(); err != nil {
		e.violate("traffic", "%v", err)
		e.res.Digest = e.tr.digest()
		return e.res
	}
	e.tr.line("run %s seed %d", sc.Name, seed)
	e.start("first start")
	if sc.Script != nil {
		sc.Script(e)
	}
	e.workloadOps = e.fault.Ops()
	e.finish()
	e.res.Steps = e.step
	e.res.VirtualTime = e.now.Sub(epoch)
	e.res.Digest = e.tr.digest()
	return e.res
}

func (e *Engine) useTraffic() error {
	if !e.setup.Replay {
		s := newSynth(e.setup.Traffic, e.setup.Buffer.MaxRecordBytes, fmt.Sprintf("%x", e.rng.Uint32()), e.now, e.led.poison)
		s.plantMapOrder = e.opts.PlantMapOrder
		e.src = s
		return nil
	}
	data := e.opts.Recording
	if data == nil {
		data = defaultRecording
	}
	r, err := loadRecording(data, e.now)
	if err != nil {
		return err
	}
	e.src = r
	return nil
}

// finish clears every fault, brings the listener back, stops the traffic
// and drains the backlog: it must drain (no stall, no crash loop), and
// then every record must have a fate.
func (e *Engine) finish() {
	e.clearFaults()
	e.listener = Listener{}
	e.src.stop()
	e.note("final drain: faults cleared, listener healthy, traffic stopped")
	// A clock stepped back holds core's clamped clock still until the wall
	// clock catches up, and with it every retry wait: the drain gets that
	// long on top.
	lag := e.clockLag()
	began := e.now
	deadline := e.now.Add(maxDrain + lag)
	for !e.halted() && e.now.Before(deadline) && !e.drained() {
		if !e.ensure() {
			break
		}
		e.runFor(time.Minute)
	}
	if lag > 0 && e.drained() && e.now.Sub(began) > maxDrain/8 {
		e.observe("the host clock was %s behind core's clamped clock at the final drain, which took %s: retry waits and age spills stand still until the wall clock catches up", lag.Round(time.Second), e.now.Sub(began).Round(time.Second))
	}
	if !e.drained() {
		queued := 0
		if e.proc != nil {
			queued = e.proc.st.MemoryRecords + e.proc.st.DiskRecords + e.proc.st.InFlightRecords
		}
		e.violate("drain", "%d records still queued after %s with a healthy listener and no fault", queued, maxDrain)
	}
	if e.proc != nil {
		e.stop()
	}
	e.finalChecks()
}

func (e *Engine) drained() bool {
	p := e.proc
	return p != nil && p.fl == nil && p.st.MemoryRecords+p.st.DiskRecords+p.st.InFlightRecords == 0
}
