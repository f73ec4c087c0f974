package core

import (
	"errors"
	"fmt"
	"io"
	"path"
	"time"
)

// Batch is a run of records with consecutive sequence numbers, the lowest
// not yet acknowledged. Record data stays valid until the batch is
// resolved and the host no longer holds it.
type Batch struct {
	Records []Record
	Bytes   int64 // record bytes, without newlines or framing
}

// First returns the batch's first sequence number (0 for an empty batch).
func (bt Batch) First() uint64 {
	if len(bt.Records) == 0 {
		return 0
	}
	return bt.Records[0].Seq
}

// Last returns the batch's last sequence number (0 for an empty batch).
func (bt Batch) Last() uint64 {
	if len(bt.Records) == 0 {
		return 0
	}
	return bt.Records[len(bt.Records)-1].Seq
}

// Next hands out the lowest unacknowledged records, at most maxRecords of
// them and at most maxBytes (but always at least one record), ending at the
// first missing sequence number so that a batch never holds a gap. An empty
// batch means nothing is queued. One batch is in flight at a time: resolve
// it with Ack, Nack or DeadLetter before calling Next again.
func (b *Buffer) Next(maxRecords int, maxBytes int64, now time.Time) (Batch, error) {
	if b.closed {
		return Batch{}, ErrClosed
	}
	if b.inflight != nil {
		return Batch{}, ErrBatchInFlight
	}
	b.clamp(now)
	var bt Batch
	full := func(n int) bool {
		return len(bt.Records) >= maxRecords || (len(bt.Records) > 0 && bt.Bytes+int64(n) > maxBytes)
	}
	take := func(r Record) bool {
		if full(len(r.Data)) || (len(bt.Records) > 0 && r.Seq != bt.Last()+1) {
			return false
		}
		bt.Records = append(bt.Records, r)
		bt.Bytes += int64(len(r.Data))
		return true
	}
	for i := 0; i < len(b.segs); {
		n := len(b.segs)
		if err := b.load(i); err != nil {
			return Batch{}, err
		}
		if len(b.segs) < n {
			continue // load retired segment i (no good record left): i names the next one
		}
		for _, r := range b.segs[i].recs {
			if !take(r) {
				return b.handOut(bt)
			}
		}
		i++
	}
	mem := b.memRecords()
	if len(mem) > 0 {
		if err := b.reserve(mem[min(len(mem), maxRecords)-1].seq); err != nil {
			return Batch{}, err
		}
	}
	for _, r := range mem {
		if !take(Record{Seq: r.seq, Data: r.data}) {
			break
		}
	}
	return b.handOut(bt)
}

func (b *Buffer) handOut(bt Batch) (Batch, error) {
	if len(bt.Records) == 0 {
		return bt, nil
	}
	b.inflight = bt.Records
	if b.cfg.Bugs.Has(BugDeleteBeforeAck) {
		b.deleteHandedOut()
	}
	return bt, nil
}

// load reads segment i whole (it is at most SegmentBytes) and decodes its
// records. Lost frames are counted as corrupt and mark the segment damaged;
// a segment left with no record is retired at once.
func (b *Buffer) load(i int) error {
	s := &b.segs[i]
	if s.loaded {
		return nil
	}
	data, err := readFileLimited(b.fs, path.Join(b.dir, s.name), s.size)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return b.readFailed(i, err)
	}
	// A file cut short since Open costs only the records it no longer
	// holds: the frames before the cut are good (counted below).
	s.readFails = 0
	base := min(int64(segmentHeaderSize), int64(len(data)))
	if s.wholeScan {
		base = 0
	}
	recs, damage := decodeFrames(data[base:], base, s.hdr.First, s.hdr.Last)
	if s.wholeScan {
		damage = nil // already counted when it was queued
	}
	if len(recs) > int(s.hdr.Count) {
		recs = recs[:s.hdr.Count]
	}
	for len(recs) > 0 && recs[0].Seq <= s.ackedThrough {
		recs = recs[1:] // acknowledged before the segment was ever read
	}
	s.recs, s.loaded = recs, true
	if lost := s.remaining - len(recs); lost > 0 || len(damage) > 0 {
		s.damaged = true
		s.remaining = len(recs)
		b.st.drop(DropCorrupt, max(lost, 0))
		b.st.corruptRecords += uint64(max(lost, 0))
	}
	if s.remaining == 0 {
		b.retireSegment(i)
	}
	return nil
}

// minReadTries is how many reads of a segment must fail, over at least
// ReadGiveUp, before it is given up.
const minReadTries = 3

// readFailed counts a failed read of segment i. A segment that stays
// unreadable for ReadGiveUp (and minReadTries reads) would stall delivery
// for good: it goes to quarantine/ (never deleted: an operator can requeue
// it) and its records are counted as corrupt.
func (b *Buffer) readFailed(i int, err error) error {
	s := &b.segs[i]
	b.st.readFailures++
	if s.readFails == 0 {
		s.firstReadFail = b.clock.last
	}
	s.readFails++
	err = fmt.Errorf("read segment %s: %w", s.name, err)
	if s.readFails < minReadTries || b.clock.last.Sub(s.firstReadFail) < b.cfg.ReadGiveUp {
		return err
	}
	b.st.drop(DropCorrupt, s.remaining)
	b.st.corruptRecords += uint64(s.remaining)
	s.remaining, s.damaged = 0, true
	b.retireSegment(i)
	return fmt.Errorf("%w: unreadable for %s, moved to %s", err, b.cfg.ReadGiveUp, quarantineDir)
}

// Ack acknowledges the batch in flight: its records are delivered and leave
// the buffer; a segment whose records are all acknowledged is removed.
func (b *Buffer) Ack(now time.Time) error {
	if b.closed {
		return ErrClosed
	}
	if b.inflight == nil {
		return ErrNoBatch
	}
	b.clamp(now)
	for _, r := range b.inflight {
		if r.Seq <= b.redeliverMax {
			b.st.redelivered++
		}
	}
	b.st.delivered += uint64(len(b.inflight))
	b.ackedThrough = max(b.ackedThrough, b.inflight[len(b.inflight)-1].Seq)
	b.removeInflight()
	return nil
}

// Nack puts the batch in flight back at the front of the queue: the next
// Next hands out the same records again (in a smaller batch if its limits
// are smaller).
func (b *Buffer) Nack(now time.Time) error {
	if b.closed {
		return ErrClosed
	}
	if b.inflight == nil {
		return ErrNoBatch
	}
	b.clamp(now)
	b.inflight = nil
	return nil
}

// removeInflight takes the batch in flight out of the queue: from the head
// segments first, then from memory.
func (b *Buffer) removeInflight() {
	n, done := len(b.inflight), 0
	for n > 0 && len(b.segs) > 0 {
		s := &b.segs[0]
		k := min(n, s.remaining)
		if s.loaded {
			s.recs = s.recs[k:]
		} else {
			s.ackedThrough = b.inflight[done+k-1].Seq
		}
		s.remaining -= k
		n -= k
		done += k
		if s.remaining == 0 {
			b.retireSegment(0)
		}
	}
	b.inflight = nil
	b.popMem(n)
}

// retireSegment takes segment i, which has no record left, out of the
// queue and removes its file (or quarantines it, if damaged). A failed
// removal is retried by Tick; until then the file counts against disk_bytes.
func (b *Buffer) retireSegment(i int) {
	s := b.segs[i]
	b.segs = append(b.segs[:i], b.segs[i+1:]...)
	r := retiree{name: s.name, size: s.size, damaged: s.damaged}
	if b.cfg.Bugs.Has(BugDeleteBeforeAck) && !s.damaged {
		return // already removed when handed out
	}
	if err := b.removeRetiree(r); err != nil {
		b.retire = append(b.retire, r)
		b.ioErrs.add(err)
	}
}

func (b *Buffer) removeRetiree(r retiree) error {
	if r.damaged {
		dest, err := b.quarantine(r.name, r.name, r.size)
		if dest == "" {
			return err
		}
		if err != nil {
			// Moved; only the cap's eviction failed, and Tick retries
			// that. Retrying the move would fail for good.
			b.ioErrs.add(err)
		}
	} else if err := removeDurable(b.fs, b.dir, r.name); err != nil {
		return err
	}
	b.diskBytes -= r.size
	if b.freeBytes >= 0 {
		b.freeBytes += r.size
	}
	return nil
}

// retryRetire retries the removals that failed earlier: retired
// segments, and evictions from quarantine/ and dead-letter/.
func (b *Buffer) retryRetire() {
	for _, f := range []*folder{b.quar, b.dead} {
		if f.bytes > f.cap {
			if err := f.enforce(b.fs, "", &b.st); err != nil {
				b.ioErrs.add(err)
			}
		}
	}
	kept := b.retire[:0]
	for _, r := range b.retire {
		if err := b.removeRetiree(r); err != nil {
			kept = append(kept, r)
		}
	}
	b.retire = kept
}

// deleteHandedOut is the planted bug BugDeleteBeforeAck: it removes the
// files of segments whose records were all handed out, before any ack.
func (b *Buffer) deleteHandedOut() {
	covered := 0
	for _, s := range b.segs {
		covered += s.remaining
		if covered > len(b.inflight) {
			return
		}
		if !s.damaged {
			_ = removeDurable(b.fs, b.dir, s.name)
		}
	}
}
