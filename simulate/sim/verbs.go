package sim

import (
	"fmt"
	"path"
	"syscall"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
)

// The verbs scenario scripts are written in. Each one that changes the
// world is a step of its own in the trace.

// note writes a step for something a script did outside the event loop.
func (e *Engine) note(format string, args ...any) {
	e.event = fmt.Sprintf(format, args...)
	e.endStep()
}

// ensure starts a process if none runs (a script verb may follow a crash
// whose restart failed).
func (e *Engine) ensure() bool {
	if e.proc == nil && !e.halted() {
		e.start("restart")
	}
	return e.proc != nil
}

// setListener changes the listener's behaviour.
func (e *Engine) setListener(why string, change func(l *Listener)) {
	change(&e.listener)
	e.note("listener: %s", why)
}

// crashWith kills the process (ProcessKill) or the machine (PowerLoss).
func (e *Engine) crashWith(kind fsadapter.CrashKind) {
	if e.ensure() {
		e.crashNow(kind)
	}
}

// restart is a graceful stop and a start: SIGTERM, then systemd.
func (e *Engine) restart() {
	if !e.ensure() {
		return
	}
	e.stop()
	if e.proc == nil {
		e.start("graceful restart")
	}
}

// fault arms a filesystem fault on the next operations that match.
func (e *Engine) injectFault(kind fsadapter.OpKind, errno syscall.Errno, times int, pathPart string, shortWrite int) *mirrorRule {
	e.addRule(fsadapter.Rule{From: e.fault.Ops() + 1, Kind: kind, Path: pathPart, Times: times, Err: errno, ShortWrite: shortWrite}, false)
	e.note("fault: %s on %d %s ops matching %q (short write %d)", errno, times, kind, pathPart, shortWrite)
	return e.rules[len(e.rules)-1]
}

// runUntilFired runs until rule r has fired at least once, or for limit.
func (e *Engine) runUntilFired(r *mirrorRule, limit time.Duration) {
	end := e.now.Add(limit)
	for r.fired == 0 && e.now.Before(end) && !e.halted() {
		e.runFor(5 * time.Second)
	}
}

// removeFolder removes an empty spool folder, as an operator cleaning up
// might: the next Open creates it again.
func (e *Engine) removeFolder(dir string) {
	if len(dirFiles(e.crash, dir)) == 0 && e.crash.Remove(dir) == nil {
		if d, err := e.crash.Open(spoolDir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
		e.note("operator removed %s", dir)
	}
}

// setQuota makes the filesystem full headroom bytes from now (0: no quota).
func (e *Engine) setQuota(headroom int64) {
	e.quota.quota = 0
	if headroom > 0 {
		e.quota.quota = usedBytes(e.crash) + headroom
	}
	e.note("quota: %d bytes (%d free)", e.quota.quota, headroom)
}

// stepClock steps the host's clock: a time sync, a VM restore.
func (e *Engine) stepClock(d time.Duration) {
	e.wallOff += d
	e.wall()
	e.obstructedAt = e.coreClock // ages jump with the clock: spills catch up at the next tick
	e.note("clock stepped %s", d)
}

// segmentFiles lists the spool's segment files.
func (e *Engine) segmentFiles() []string {
	var segs []string
	for _, name := range dirFiles(e.crash, spoolDir) {
		if hasSuffix(name, segSuffix) {
			segs = append(segs, name)
		}
	}
	return segs
}

// damage changes one stored segment file with change and marks the records
// whose frames it broke as damaged by the simulator.
func (e *Engine) damage(what string, change func(data []byte) []byte) {
	segs := e.segmentFiles()
	if len(segs) == 0 {
		e.note("%s: no segment to damage", what)
		return
	}
	name := path.Join(spoolDir, segs[e.rng.IntN(len(segs))])
	before, err := readAll(e.crash, name)
	if err != nil || len(before) == 0 {
		e.note("%s: cannot read %s", what, name)
		return
	}
	after := change(append([]byte(nil), before...))
	if !rewriteSynced(e.crash, name, after) {
		e.note("%s: cannot rewrite %s", what, name)
		return
	}
	lost := lostFrames(before, after)
	for _, dr := range lost {
		if id := e.led.find(dr.seq, dr.data); id != noRec {
			e.led.recs[id].damaged = true
		}
	}
	e.note("%s %s: %d records damaged", what, path.Base(name), len(lost))
}

// flipBit flips one bit of a stored segment, header or frame alike.
func (e *Engine) flipBit() {
	e.damage("bit flip in", func(data []byte) []byte {
		i := e.rng.IntN(len(data))
		data[i] ^= 1 << e.rng.IntN(8)
		return data
	})
}

// flipHeader flips one bit of a stored segment's header: Open must
// salvage its records and quarantine the file.
func (e *Engine) flipHeader() {
	e.damage("header bit flip in", func(data []byte) []byte {
		i := e.rng.IntN(min(len(data), segHeaderSize))
		data[i] ^= 1 << e.rng.IntN(8)
		return data
	})
}

// tearSegment cuts the tail off a stored segment, as a disk that lost
// its last blocks does.
func (e *Engine) tearSegment() {
	e.damage("tail torn off", func(data []byte) []byte {
		return data[:len(data)-1-e.rng.IntN(min(len(data)-1, 400))]
	})
}

// killAtTempRename arms a process kill at the rename of the next segment
// temp file: the temp file, written and fsynced, is left over.
func (e *Engine) killAtTempRename() {
	e.addRule(fsadapter.Rule{From: e.fault.Ops() + 1, Kind: fsadapter.OpRename, Path: segSuffix + tmpSuffix, Times: 1}, true)
	e.killAs = fsadapter.ProcessKill
	e.killOn = func(kind fsadapter.OpKind, p string) bool {
		return kind == fsadapter.OpRename && contains(p, segSuffix+tmpSuffix)
	}
	e.note("armed: kill the process at the next segment rename")
}

// feed writes n records on one connection, in a single read, straight
// through the framing: the scripted traffic of crash-point workloads.
func (e *Engine) feed(n int) {
	if !e.ensure() {
		return
	}
	s, ok := e.src.(*synth)
	if !ok {
		return
	}
	var data []byte
	for range n {
		data = append(data, s.record(e.rng, false)...)
		data = append(data, '\n')
	}
	p := e.proc
	d := p.conns[0]
	if d == nil {
		d = core.NewDecoder(e.setup.Buffer.MaxRecordBytes)
		p.conns[0] = d
	}
	recs := 0
	d.Feed(data, func(l core.Line) {
		if l.Reject == "" && e.alive() {
			e.add(p, l.Record)
			recs++
		}
	})
	e.event = fmt.Sprintf("feed %d records", recs)
	e.finishScripted()
}

// tickAfter advances the clock by d and ticks.
func (e *Engine) tickAfter(d time.Duration) {
	if !e.ensure() {
		return
	}
	e.now = e.now.Add(d)
	e.tick()
	e.finishScripted()
}

// deliverOnce sends one batch of at most maxRecords and applies the
// answer: two steps, so a crash can fall between the listener keeping a
// batch and the buffer hearing of it.
func (e *Engine) deliverOnce(maxRecords int) bool {
	if !e.ensure() {
		return false
	}
	e.batchCap = maxRecords
	e.send()
	e.batchCap = 0
	sent := e.proc.fl != nil
	e.finishScripted()
	if !sent || e.proc == nil || e.proc.fl == nil {
		return sent
	}
	e.now = e.now.Add(e.proc.fl.ans.latency)
	e.answer()
	e.finishScripted()
	return true
}

// drainAll delivers batches of maxRecords until the queue is empty.
func (e *Engine) drainAll(maxRecords int) {
	for range 10_000 {
		if e.halted() || !e.deliverOnce(maxRecords) {
			return
		}
	}
}

// finishScripted closes a scripted step like the loop closes its own.
func (e *Engine) finishScripted() {
	e.endStep()
	if e.dying && e.proc != nil {
		e.crashNow(e.killAs)
	}
}
