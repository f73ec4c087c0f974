package sim

import (
	"fmt"
	"time"

	"github.com/bitville/apmd/core"
)

// unattributedDrops sums the drop reasons whose records only core can
// name: the ledger cannot tell which records they were, only how many.
func unattributedDrops(st core.Stats) int {
	return int(st.Dropped[core.DropMemoryFull] + st.Dropped[core.DropDiskFullOldest] +
		st.Dropped[core.DropDiskFullNewest] + st.Dropped[core.DropCorrupt])
}

// endProcess settles the ledger for a process that crashed or stopped.
// Every record it had (carried from disk, or accepted) must now be on disk,
// acknowledged, dead-lettered, damaged by the simulator, lost while core
// held it in memory (only if lossAllowed: a crash, or a Shutdown that said
// it could not save), or covered by the process's own drop counters.
func (e *Engine) endProcess(p *process, risk []recID, lossAllowed bool) {
	surv := e.survivors()
	unknown := e.settle(p, surv, risk, lossAllowed)
	drops := unattributedDrops(p.st)
	e.unattributedDrops += drops
	e.vanished += len(unknown)
	if len(unknown) > drops {
		r := e.led.recs[unknown[0]]
		e.violate("no-silent-loss", "process %d: %d records vanished (neither on disk, delivered, dead-lettered nor in memory) but it counted only %d drops; first: record %d (seq %d, 0 if never seen numbered), accepted by process %d",
			p.n, len(unknown), drops, unknown[0], r.seq, r.proc)
	}
	for _, id := range unknown {
		e.led.recs[id].dropped = true
	}
	for i, reason := range core.DropReasons {
		e.res.Dropped[i] += p.st.Dropped[reason]
	}
	e.carried = surv.list
	e.proc = nil
}

// survivors reads which records the spool's segment files hold now.
func (e *Engine) survivors() *idSet {
	surv := newIDSet()
	for _, dr := range scanSpool(e.crash) {
		id := e.led.find(dr.seq, dr.data)
		if id == noRec {
			e.violate("received", "a segment holds seq %d (%d bytes) that no process accepted", dr.seq, len(dr.data))
			continue
		}
		surv.add(id)
	}
	return surv
}

// settle marks the records of p lost at a crash, checking the bounds, and
// returns those that vanished otherwise.
func (e *Engine) settle(p *process, surv *idSet, risk []recID, lossAllowed bool) []recID {
	atRisk := map[recID]bool{}
	for _, id := range risk {
		atRisk[id] = true
	}
	var unknown []recID
	lostN, lostBytes := 0, 0
	seen := map[recID]bool{}
	for _, list := range [][]recID{p.carried, p.accepted} {
		for _, id := range list {
			r := &e.led.recs[id]
			if seen[id] || surv.has[id] || p.acked.has[id] || p.dead.has[id] || r.damaged {
				continue
			}
			seen[id] = true
			if atRisk[id] && lossAllowed {
				r.lostAtCrash = true
				lostN++
				lostBytes += len(r.body)
				e.checkLossAge(id)
				continue
			}
			unknown = append(unknown, id)
		}
	}
	e.checkLossBounds(p, lostN, lostBytes)
	return unknown
}

// checkLossBounds: a crash loses at most what memory may hold, plus the
// part of a batch in flight still in memory.
func (e *Engine) checkLossBounds(p *process, n, bytes int) {
	cfg := e.setup.Buffer
	var flN, flBytes int
	if p.fl != nil {
		flN, flBytes = len(p.fl.ids), int(p.fl.bt.Bytes)
	}
	if n > cfg.MemoryRecords+flN || int64(bytes) > cfg.MemoryBytes+int64(flBytes) {
		e.violate("crash-loss-bound", "process %d lost %d records (%d bytes) at a crash; memory_records %d, memory_bytes %d, in flight %d",
			p.n, n, bytes, cfg.MemoryRecords, cfg.MemoryBytes, flN)
	}
}

// checkLossAge: a record lost at a crash must have been young, unless
// spills were obstructed (failing, no room, the clock stepped) since it
// arrived.
func (e *Engine) checkLossAge(id recID) {
	r := e.led.recs[id]
	if age := e.coreClock.Sub(r.arrival); age > e.ageLimit() && e.obstructedAt.Before(r.arrival) {
		e.violate("crash-loss-age", "lost record seq %d was %s old in memory; max_memory_age %s", r.seq, age, e.setup.Buffer.MaxMemoryAge)
	}
}

func (e *Engine) ageLimit() time.Duration {
	return e.setup.Buffer.MaxMemoryAge + tickInterval(e.setup.Buffer)
}

// checkStep runs the invariants that hold after every step of a process.
func (e *Engine) checkStep(p *process) {
	st := p.st
	if err := st.CheckConservation(); err != nil {
		e.violate("conservation", "process %d: %v", p.n, err)
	}
	if st.Accepted != uint64(len(p.accepted)) {
		e.violate("ledger-accepted", "process %d: core counts %d accepted, the ledger %d", p.n, st.Accepted, len(p.accepted))
	}
	if st.Delivered != p.ackedN {
		e.violate("ledger-delivered", "process %d: core counts %d delivered, the ledger %d acknowledged", p.n, st.Delivered, p.ackedN)
	}
	for _, r := range []core.DropReason{core.DropPoison, core.DropTooLarge} {
		if st.Dropped[r] != p.dlBy[r] {
			e.violate("ledger-dead-letter", "process %d: core counts %d %s, the ledger dead-lettered %d", p.n, st.Dropped[r], r, p.dlBy[r])
		}
	}
	e.noteObstruction(p)
	e.syncMemory(p)
	e.checkMemory(p, p.mem)
	e.checkDiskGauge(st)
}

// noteObstruction remembers when spills could not work, which excuses
// records staying in memory past max_memory_age.
func (e *Engine) noteObstruction(p *process) {
	st, cfg := p.st, e.setup.Buffer
	overhead := int64(st.MemoryRecords+p.inflightLen())*frameHdrSize + 2*segHeaderSize
	need := st.MemoryBytes + overhead + cfg.SegmentBytes
	full := st.DiskBytes+need > cfg.DiskBytes ||
		(e.quota.quota > 0 && e.quota.room() < need+cfg.MinFreeBytes)
	if st.SpillFailures > p.spillFailures || st.MetaFailures > p.metaFailures || full || e.faultsArmed() {
		e.obstructedAt, e.obstructedV = e.coreClock, e.now
	}
	p.spillFailures, p.metaFailures = st.SpillFailures, st.MetaFailures
}

func (p *process) inflightLen() int {
	if p.fl == nil {
		return 0
	}
	return len(p.fl.ids)
}

// checkMemory: memory caps (exceeded only by a batch in flight) and the
// age of the oldest record in memory.
func (e *Engine) checkMemory(p *process, mem []recID) {
	cfg := e.setup.Buffer
	if p.st.MemoryRecords > 0 && (len(mem) > cfg.MemoryRecords || p.st.MemoryBytes > cfg.MemoryBytes) {
		e.violate("memory-cap", "process %d holds %d records, %d bytes in memory; caps %d, %d", p.n, len(mem), p.st.MemoryBytes, cfg.MemoryRecords, cfg.MemoryBytes)
	}
	if len(mem) == 0 || e.dying {
		return
	}
	r := e.led.recs[mem[0]]
	if age := e.coreClock.Sub(r.arrival); age > e.ageLimit() && e.obstructedAt.Before(r.arrival) {
		e.violate("memory-age", "process %d: oldest record in memory (record %d) is %s old; max_memory_age %s, spills unobstructed", p.n, mem[0], age, cfg.MaxMemoryAge)
	}
	// The same age in virtual time: core's clock absorbs a step back, so a
	// record should not stay longer in virtual time either.
	if age := e.now.Sub(r.arrivalV); age > e.ageLimit() && e.obstructedV.Before(r.arrivalV) && age > e.maxTrueAge {
		e.maxTrueAge = age
	}
}

// checkDiskGauge: core's own disk gauge stays under disk_bytes, except
// after a graceful stop, which may exceed it by memory_bytes (plus framing)
// until deliveries or evictions bring it back.
func (e *Engine) checkDiskGauge(st core.Stats) {
	cfg := e.setup.Buffer
	if st.DiskBytes <= cfg.DiskBytes {
		e.overCapOK = false
		return
	}
	if !e.overCapOK || st.DiskBytes > cfg.DiskBytes+e.stopAllowance() {
		e.violate("disk-cap", "core's disk gauge %d bytes over disk_bytes %d", st.DiskBytes, cfg.DiskBytes)
	}
}

// stopAllowance is what a graceful stop may add beyond disk_bytes: memory
// and the batch in flight, with their framing, in segments of their own.
func (e *Engine) stopAllowance() int64 {
	cfg := e.setup.Buffer
	recs := int64(cfg.MemoryRecords + e.setup.Policy.BatchRecords)
	bytes := cfg.MemoryBytes + e.setup.Policy.BatchBytes
	return bytes + recs*frameHdrSize + (bytes/cfg.SegmentBytes+2)*segHeaderSize
}

// measureDisk checks the caps against the files themselves, whenever the
// process has touched the filesystem since the last look.
func (e *Engine) measureDisk() {
	ops := e.fault.Ops()
	if ops == e.opsMarked {
		return
	}
	e.opsMarked = ops
	cfg := e.setup.Buffer
	spool, _ := dirBytes(e.crash, spoolDir, func(n string) bool { return isSpoolSegment(n) || hasSuffixTmp(n) })
	limit := cfg.DiskBytes
	if e.overCapOK {
		limit += e.stopAllowance()
	}
	if spool > limit {
		e.violate("disk-cap", "segment and temp files hold %d bytes; disk_bytes %d", spool, cfg.DiskBytes)
	}
	for _, f := range []struct {
		dir string
		cap int64
	}{{quarantinePath, cfg.QuarantineBytes}, {deadLetterPath, cfg.DeadLetterBytes}} {
		total, largest := dirBytes(e.crash, f.dir, func(string) bool { return true })
		if total > f.cap+largest {
			e.violate("folder-cap", "%s holds %d bytes; cap %d", f.dir, total, f.cap)
		}
	}
}

func hasSuffixTmp(name string) bool { return len(name) > 4 && name[len(name)-4:] == tmpSuffix }

// finalChecks run once the backlog has drained and the last process
// stopped: every record has a fate, and the drops cover what vanished.
func (e *Engine) finalChecks() {
	if e.maxTrueAge > 0 {
		e.observe("a record stayed %s in memory (virtual time; max_memory_age %s): the age bound on crash loss held in core's clock, not in virtual time", e.maxTrueAge.Round(time.Millisecond), e.setup.Buffer.MaxMemoryAge)
	}
	damagedLost := 0
	for i := range e.led.recs {
		r := &e.led.recs[i]
		switch {
		case r.deliveries > 0:
			e.res.Delivered++
			e.res.Redelivered += r.deliveries - 1
		case r.deadLettered != "", r.dropped:
		case r.lostAtCrash:
			e.res.LostToCrash++
		case r.damaged:
			damagedLost++
		default:
			e.violate("every-record-accounted", "record %d (seq %d, process %d) was neither delivered, dead-lettered, dropped nor lost at a crash", i, r.seq, r.proc)
		}
		if r.poison && r.deliveries > 0 {
			e.violate("poison", "poison record seq %d was delivered", r.seq)
		}
	}
	if e.vanished+damagedLost > e.unattributedDrops {
		e.violate("no-silent-loss", "%d records vanished and %d were damaged on disk, but core counted only %d drops for them", e.vanished, damagedLost, e.unattributedDrops)
	}
	if len(e.carried) > 0 {
		e.violate("drain", "%d records still on disk after the backlog drained", len(e.carried))
	}
	e.res.Records = len(e.led.recs)
}

var _ = fmt.Sprintf
