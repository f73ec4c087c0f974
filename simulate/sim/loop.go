package sim

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bitville/apmd/core"
)

// The kinds of event the loop runs, in the order ties are broken.
type eventKind int

const (
	evNone eventKind = iota
	evAnswer
	evTraffic
	evTick
	evSend
)

// runFor runs the event loop for d of virtual time.
func (e *Engine) runFor(d time.Duration) {
	end := e.now.Add(d)
	for !e.halted() {
		if e.proc == nil {
			e.start("restart")
			if e.proc == nil {
				return
			}
		}
		at, kind := e.nextEvent()
		if kind == evNone || at.After(end) {
			e.now = later(e.now, end)
			return
		}
		e.now = later(e.now, at)
		e.dispatch(kind)
	}
}

func (e *Engine) dispatch(kind eventKind) {
	switch kind {
	case evAnswer:
		e.answer()
	case evTraffic:
		e.traffic()
	case evTick:
		e.tick()
	case evSend:
		e.send()
	}
	e.endStep()
	if e.dying && e.proc != nil {
		e.crashNow(e.killAs)
	}
}

// nextEvent returns the earliest pending event.
func (e *Engine) nextEvent() (time.Time, eventKind) {
	p := e.proc
	best, kind := time.Time{}, evNone
	consider := func(t time.Time, k eventKind) {
		if kind == evNone || t.Before(best) {
			best, kind = t, k
		}
	}
	if p.fl != nil {
		consider(p.fl.due, evAnswer)
	}
	if t, ok := e.src.nextAt(); ok {
		consider(t, evTraffic)
	}
	consider(e.nextTick, evTick)
	if p.fl == nil && p.st.MemoryRecords+p.st.DiskRecords > 0 {
		consider(later(later(e.now, e.sendAtVirtual(p)), p.retryAt), evSend)
	}
	return best, kind
}

// sendAtVirtual turns the policy's SendAt, which is in the host's clock
// (the policy absorbs a step back), into virtual time.
func (e *Engine) sendAtVirtual(p *process) time.Time {
	host := e.now.Add(e.wallOff)
	at := p.pol.SendAt(host)
	if !at.After(host) {
		return e.now
	}
	return at.Add(-e.wallOff)
}

// traffic feeds one socket event through the connection's decoder and
// hands every record to the buffer.
func (e *Engine) traffic() {
	p := e.proc
	c := e.src.next(e.rng)
	var lines, recs int
	emit := func(l core.Line) {
		lines++
		e.checkFraming(c.conn, l)
		if l.Reject != "" {
			e.res.Rejected++
			return
		}
		if e.alive() {
			e.add(p, l.Record)
			recs++
		}
	}
	switch c.kind {
	case core.RecOpen:
		p.conns[c.conn] = core.NewDecoder(e.setup.Buffer.MaxRecordBytes)
	case core.RecData:
		d := p.conns[c.conn]
		if d == nil { // a recorded client reconnects after a crash and writes on
			d = core.NewDecoder(e.setup.Buffer.MaxRecordBytes)
			p.conns[c.conn] = d
		}
		d.Feed(c.data, emit)
	case core.RecClose:
		if d := p.conns[c.conn]; d != nil {
			d.Close(emit)
			delete(p.conns, c.conn)
		}
	}
	e.event = fmt.Sprintf("%s conn %d: %d bytes, %d lines, %d records", c.kind, c.conn, len(c.data), lines, recs)
}

// add hands one framed record to the buffer and the ledger.
func (e *Engine) add(p *process, line []byte) {
	body := bytes.Clone(line)
	if err := p.buf.Add(body, e.wall()); err != nil {
		e.violate("framing", "Add refused a framed record of %d bytes: %v", len(body), err)
		return
	}
	id := e.led.accept(body, e.coreClock, e.now, p.n)
	p.accepted = append(p.accepted, id)
	p.mem = append(p.mem, id)
}

// checkFraming compares the decoder's verdict with what the generator
// wrote on that connection.
func (e *Engine) checkFraming(conn uint64, l core.Line) {
	want, ok := e.src.expect(conn)
	if !ok {
		return
	}
	if want.reject != l.Reject || (l.Reject == "" && !bytes.Equal(want.body, l.Record)) {
		e.violate("framing", "conn %d: a line of %d bytes came out as %q (%d bytes), expected %q", conn, want.end-want.start, l.Reject, l.Bytes, want.reject)
	}
}

// tick drives core's timers and tells it the free space, as the shell does.
func (e *Engine) tick() {
	p := e.proc
	p.buf.SetFreeBytes(e.quota.room())
	_ = p.buf.Tick(e.wall())
	errs, more := p.buf.TakeIOErrors()
	e.event = fmt.Sprintf("tick (%d I/O errors)", len(errs)+more)
	e.heartbeat = gridCeil(e.now.Add(idleTick), tickInterval(e.setup.Buffer))
}

// scheduleTick ticks on the shell's grid: at the first grid point after
// the oldest record in memory comes of age (a tick with nothing due does
// nothing, so the shell's other ticks are skipped), and every idleTick to
// retry removals. It runs after every step, since an Add changes memory.
func (e *Engine) scheduleTick(p *process) {
	ti := tickInterval(e.setup.Buffer)
	next := e.heartbeat
	if len(p.mem) > 0 {
		// Core's clock runs at the host's pace and absorbs steps back, so
		// the oldest record comes of age max_memory_age of virtual time
		// after it arrived, or earlier in host time if the clock stepped
		// forward since.
		r, age := e.led.recs[p.mem[0]], e.setup.Buffer.MaxMemoryAge
		due := minTime(r.arrivalV.Add(age), r.arrival.Add(age).Add(-e.wallOff))
		next = minTime(next, gridCeil(later(due, e.now.Add(time.Nanosecond)), ti))
	}
	e.nextTick = next
}

func gridCeil(t time.Time, step time.Duration) time.Time {
	d := t.Sub(epoch)
	if r := d % step; r != 0 {
		d += step - r
	}
	return epoch.Add(d)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// send hands the next batch to the listener.
func (e *Engine) send() {
	p := e.proc
	maxRecords, maxBytes := p.pol.Limits()
	if e.batchCap > 0 {
		maxRecords = min(maxRecords, e.batchCap)
	}
	bt, err := p.buf.Next(maxRecords, maxBytes, e.wall())
	if err != nil {
		p.retryAt = e.now.Add(time.Second)
		e.event = fmt.Sprintf("next failed: %v", err)
		return
	}
	if len(bt.Records) == 0 {
		p.retryAt = e.now.Add(time.Second)
		e.event = "next: nothing"
		return
	}
	fl := &flight{bt: copyBatch(bt)}
	poison := false
	for i, r := range fl.bt.Records {
		if i > 0 && r.Seq != fl.bt.Records[i-1].Seq+1 {
			e.violate("batch-no-gap", "batch %d-%d has a gap after seq %d", bt.First(), bt.Last(), fl.bt.Records[i-1].Seq)
		}
		id := e.bind(p.agent, r.Seq, r.Data)
		fl.ids = append(fl.ids, id)
		poison = poison || (id != noRec && e.led.recs[id].poison)
	}
	fl.ans = e.listener.answerBatch(fl.bt, poison, e.now, epoch, e.rng)
	if fl.ans.processed {
		e.deliver(p.agent, fl)
	}
	fl.due = e.now.Add(fl.ans.latency)
	p.fl = fl
	e.event = fmt.Sprintf("send %d-%d (%d records, %d bytes) -> %s in %s", bt.First(), bt.Last(), len(bt.Records), bt.Bytes, fl.ans.out.Label(), fl.ans.latency)
}

func copyBatch(bt core.Batch) core.Batch {
	out := core.Batch{Bytes: bt.Bytes, Records: make([]core.Record, len(bt.Records))}
	for i, r := range bt.Records {
		out.Records[i] = core.Record{Seq: r.Seq, Data: bytes.Clone(r.Data)}
	}
	return out
}

// bind ties a number seen in a batch to its record and reports what the
// ledger says against it.
func (e *Engine) bind(agent string, seq uint64, data []byte) recID {
	id, res := e.led.bind(agent, seq, data)
	switch res {
	case bindUnknown:
		e.violate("received", "seq %d handed out with %d bytes that no process accepted", seq, len(data))
	case bindTwoRecords:
		e.violate("seq-unique", "agent %.8s seq %d names two records: first seen as record %d, now other bytes", agent, seq, id)
	case bindRenumbered:
		e.violate("seq-unique", "record %d (seq %d) handed out again as seq %d", id, e.led.recs[id].seq, seq)
	}
	return id
}

// deliver is the listener keeping a batch: first deliveries must come in
// sequence order, per agent.
func (e *Engine) deliver(agent string, fl *flight) {
	for i, id := range fl.ids {
		if id == noRec {
			continue
		}
		r := &e.led.recs[id]
		r.deliveries++
		if r.deliveries > 1 {
			continue
		}
		seq := fl.bt.Records[i].Seq
		if last, ok := e.led.first[agent]; ok && seq <= last {
			e.violate("first-delivery-order", "agent %.8s: seq %d delivered for the first time after seq %d", agent, seq, last)
		}
		e.led.first[agent] = max(e.led.first[agent], seq)
	}
}

// answer applies the policy's decision on the listener's answer.
func (e *Engine) answer() {
	p := e.proc
	fl := p.fl
	p.fl = nil
	now := e.wall()
	dec := p.pol.Decide(fl.bt, fl.ans.out, now)
	e.event = fmt.Sprintf("answer %s to %d-%d: %s", fl.ans.out.Label(), fl.bt.First(), fl.bt.Last(), dec.Action)
	switch dec.Action {
	case core.ActAck:
		if err := p.buf.Ack(now); err != nil {
			e.violate("ack", "Ack refused: %v", err)
			return
		}
		p.ackedN += uint64(len(fl.ids))
		for _, id := range fl.ids {
			p.acked.add(id)
		}
		p.forget(fl.ids)
	case core.ActDeadLetter:
		e.deadLetter(p, fl, dec.Reason, now)
	default:
		_ = p.buf.Nack(now)
	}
	if dec.ReloadKey && e.listener.AuthBroken && !e.now.Before(e.listener.KeyFixedAt) {
		e.listener.AuthBroken = false
		e.event += ", key reloaded"
	}
}

// deadLetter resolves a batch the policy gave up on. A failed write keeps
// the batch (Nack), as the shell does, and the policy sends it again.
func (e *Engine) deadLetter(p *process, fl *flight, reason core.DropReason, now time.Time) {
	if err := p.buf.DeadLetter(reason, now); err != nil {
		_ = p.buf.Nack(now)
		e.event += fmt.Sprintf(" (failed, kept: %v)", err)
		return
	}
	p.dlBy[reason] += uint64(len(fl.ids))
	p.forget(fl.ids)
	for i, id := range fl.ids {
		if id == noRec {
			continue
		}
		r := &e.led.recs[id]
		p.dead.add(id)
		r.deadLettered = reason
		switch {
		case reason == core.DropPoison && !r.poison:
			e.violate("poison", "seq %d dead-lettered as poison, but the listener accepts it", fl.bt.Records[i].Seq)
		case reason == core.DropTooLarge && (e.listener.MaxBatchBytes == 0 || int64(len(r.body)) <= e.listener.MaxBatchBytes):
			e.violate("too-large", "seq %d (%d bytes) dead-lettered as too_large", fl.bt.Records[i].Seq, len(r.body))
		}
	}
}

// endStep closes a step: refresh the process's stats, check the step's
// invariants and write the trace line.
func (e *Engine) endStep() {
	e.step++
	if e.now.Equal(e.lastStepAt) {
		e.sameTime++
		if e.sameTime == maxSameTime {
			e.violate("livelock", "%d steps without virtual time moving", maxSameTime)
		}
	} else {
		e.lastStepAt, e.sameTime = e.now, 0
	}
	p := e.proc
	if p != nil {
		p.st = p.buf.Stats(e.wall())
		e.checkStep(p)
		e.scheduleTick(p)
	}
	e.measureDisk()
	e.tr.line("#%d +%s w%+s %s | %s", e.step, e.now.Sub(epoch), e.wallOff, e.event, e.state())
	e.event = ""
}

// state is the canonical description of the state after a step.
func (e *Engine) state() string {
	l := len(e.led.recs)
	s := fmt.Sprintf("ops=%d recs=%d rej=%d", e.fault.Ops(), l, e.res.Rejected)
	p := e.proc
	if p == nil {
		return s + " down"
	}
	st := p.st
	return s + fmt.Sprintf(" p%d mem=%d/%dB disk=%d/%dB/%ds fl=%d acc=%d del=%d drop=%d rec=%d sf=%d",
		p.n, st.MemoryRecords, st.MemoryBytes, st.DiskRecords, st.DiskBytes, st.DiskSegments,
		st.InFlightRecords, st.Accepted, st.Delivered, st.DroppedFromBuffer(), st.Recovered, st.SpillFailures)
}

// forget takes records that left the buffer (acked, dead-lettered) out of
// the memory model.
func (p *process) forget(ids []recID) {
	gone := map[recID]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	kept := p.mem[:0]
	for _, id := range p.mem {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	p.mem = kept
}
