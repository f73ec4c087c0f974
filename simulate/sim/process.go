package sim

import (
	"fmt"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
)

// process is one run of the daemon between a start and a crash or stop:
// its buffer and policy, its connections, and what the ledger knows it did.
type process struct {
	n     int
	buf   *core.Buffer
	pol   *core.Policy
	agent string
	st    core.Stats // after the latest step
	conns map[uint64]*core.Decoder
	fl    *flight

	carried                     []recID // on disk when it started
	accepted                    []recID // in the order Add accepted them: sequence order
	mem                         []recID // what core holds in memory, in sequence order (see syncMemory)
	acked                       *idSet
	ackedN                      uint64 // records acknowledged, counted per Ack as core counts them
	dead                        *idSet
	dlBy                        map[core.DropReason]uint64
	retryAt                     time.Time // virtual time before which Next is not retried after an error
	spillFailures, metaFailures uint64    // core's counters at the previous step
}

// flight is the batch the listener is answering.
type flight struct {
	bt  core.Batch
	ids []recID
	ans answer
	due time.Time // virtual time the answer arrives
}

// start opens a new process on the spool, retrying while injected faults
// make Open fail, as systemd restarts a daemon that exits at start. Open
// failing with no fault armed, or failing for good, is a crash loop.
func (e *Engine) start(why string) {
	for try := 1; try <= maxOpenTries && !e.halted(); try++ {
		if e.openOnce(why, try) {
			return
		}
	}
	if !e.crashLooping { // one report per outage
		e.crashLooping = true
		e.violate("open-after-fault", "Open failed %d times in a row: a crash loop; last: %s", maxOpenTries, e.lastOpenErr)
	}
}

// openOnce calls Open once. It reports whether the start is over: a
// process runs (or died at once, and crashNow started the next one).
func (e *Engine) openOnce(why string, try int) bool {
	// A new process's clamped clock starts from the clock as it is.
	e.coreClock = e.now.Add(e.wallOff)
	cfg := e.setup.Buffer
	cfg.Entropy, cfg.Bugs = e.coreEntropy, e.opts.Bugs
	fired := e.res.FaultsFired
	buf, rep, err := core.Open(e.fault, spoolDir, cfg, e.wall())
	switch {
	case e.dying && buf != nil:
		e.proc = e.newProcess(buf, rep)
		e.note("open (%s) died at its crash point", why)
		e.crashNow(e.killAs)
		return true
	case e.dying:
		e.crashFS(e.killAs)
		e.note("open (%s) died at its crash point", why)
		return false
	case err != nil:
		e.lastOpenErr = err.Error()
		if e.res.FaultsFired == fired && e.quota.quota == 0 {
			e.violate("open-after-fault", "Open failed with no fault armed: %v", err)
		}
		e.now = e.now.Add(time.Second)
		e.note("open (%s) failed, try %d: %v", why, try, err)
		return false
	}
	e.proc = e.newProcess(buf, rep)
	e.crashLooping = false
	e.note("open (%s): process %d, agent %.8s, %d segments, %d records, %d temp removed, %d corrupt, %d quarantined",
		why, e.proc.n, rep.AgentID, rep.Segments, rep.Records, rep.TempFilesRemoved, rep.CorruptRecords, len(rep.Quarantined))
	if e.proc != nil && e.proc.st.Recovered < uint64(len(e.proc.carried)) {
		e.violate("recovery", "Open recovered %d records, the disk holds %d well-formed ones", e.proc.st.Recovered, len(e.proc.carried))
	}
	return true
}

func (e *Engine) newProcess(buf *core.Buffer, rep core.Report) *process {
	e.procs++
	p := &process{n: e.procs, buf: buf, agent: rep.AgentID, conns: map[uint64]*core.Decoder{},
		carried: e.carried, acked: newIDSet(), dead: newIDSet(), dlBy: map[core.DropReason]uint64{}}
	pol, err := core.NewPolicy(e.setup.Policy, e.policyEntropy)
	if err != nil {
		panic(fmt.Sprintf("sim: policy config: %v", err)) // scenarios are code: a bad one is a programmer error
	}
	p.pol = pol
	p.st = buf.Stats(e.wall())
	return p
}

// crashNow ends the process the hard way: the machine (or process) dies,
// the filesystem keeps what the crash kind allows, and a new process
// starts on what is left.
func (e *Engine) crashNow(kind fsadapter.CrashKind) {
	p := e.proc
	p.st = p.buf.Stats(e.wall())
	e.syncMemory(p)
	risk := p.mem
	e.crashFS(kind)
	e.event = fmt.Sprintf("crash %s of process %d", kind, p.n)
	e.endProcess(p, risk, true)
	e.endStep()
	e.start("after " + kind.String())
}

// crashFS applies a crash to the filesystem and to everything a process
// had: its connections close and its crash point is spent.
func (e *Engine) crashFS(kind fsadapter.CrashKind) {
	e.crash.Crash(kind)
	e.res.Crashes++
	e.src.crashed()
	e.dying = false
	e.opts.crashAtOp = 0
	e.rearm()
}

// stop ends the process gracefully: Shutdown spills memory and the batch
// in flight (the shell cancels the request first), so nothing may be lost
// unless Shutdown says so.
func (e *Engine) stop() {
	p := e.proc
	err := p.buf.Shutdown(e.wall())
	p.fl = nil
	if e.dying {
		e.event = fmt.Sprintf("stop of process %d died at its crash point", p.n)
		e.endStep()
		e.crashNow(e.killAs)
		return
	}
	p.st = p.buf.Stats(e.wall())
	e.syncMemory(p)
	risk := p.mem
	if err == nil && len(risk) > 0 {
		e.violate("graceful-stop", "Shutdown reported success with %d records still in memory", len(risk))
	}
	e.src.crashed()
	e.res.Restarts++
	e.overCapOK = true
	e.event = fmt.Sprintf("stop process %d: %v", p.n, err)
	e.endProcess(p, risk, err != nil)
	e.endStep()
}
