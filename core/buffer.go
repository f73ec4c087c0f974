package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/afero"
)

// Errors a Buffer returns to its host.
var (
	ErrClosed         = errors.New("buffer closed")
	ErrRecordTooLarge = errors.New("record longer than max_record_bytes")
	ErrEmptyRecord    = errors.New("empty record")
	ErrBatchInFlight  = errors.New("a batch is already in flight: Ack, Nack or DeadLetter it first")
	ErrNoBatch        = errors.New("no batch in flight")
	ErrNotSaved       = errors.New("records could not be saved")
)

// Record is one record with its sequence number, as Next hands it out.
type Record struct {
	Seq  uint64
	Data []byte
}

// memRecord is a record in memory, not yet spilled.
type memRecord struct {
	seq  uint64
	at   time.Time
	data []byte
}

// segment is one segment file of the disk backlog. Only the segments at the
// head of the queue are loaded; the others are known by their header.
type segment struct {
	name      string
	hdr       segmentHeader
	size      int64    // file bytes
	remaining int      // records not yet acknowledged or dropped
	recs      []Record // decoded records still queued, once loaded
	loaded    bool
	damaged   bool // frames were lost: quarantine the file instead of deleting it
	wholeScan bool // a damaged file read in place: its header cannot be trusted

	// ackedThrough is the highest sequence number removed from an
	// unloaded segment: a batch handed out from memory can be spilled while
	// in flight, and acknowledged before the segment is ever read back.
	ackedThrough uint64

	readFails     int       // consecutive failed reads
	firstReadFail time.Time // when they began
}

// Buffer is the durable local queue: a memory queue whose oldest part may be
// on disk, handed out in sequence order in batches. It is not safe for
// concurrent use: one owner drives it, one call at a time. Every call takes
// the current time; Buffer never reads a clock.
//
// Invariants, after every call:
//
//	recovered + accepted = delivered + dropped + memory + disk + in flight
//	in flight = the first len(inflight) records of segs followed by mem
//	a sequence number reaches a segment or Next only when ≤ meta.ReservedThrough on disk
type Buffer struct {
	fs  afero.Fs
	dir string
	cfg Config

	meta         meta   // as last made durable
	nextSeq      uint64 // number the next accepted record gets
	ackedThrough uint64 // highest sequence number acknowledged
	redeliverMax uint64 // records at or below this were acknowledged by an earlier process

	segs      []segment
	mem       []memRecord
	memHead   int
	memBytes  int64
	inflight  []Record
	diskBytes int64

	encBuf       []byte // reused by spills
	freeBytes    int64  // last reading from the host minus what was written since; -1 unknown
	spillRetryAt time.Time
	retire       []retiree // fully acknowledged segments whose removal failed
	clock        clock     // the host's times, never going back
	closed       bool

	quar *folder // quarantine/
	dead *folder // dead-letter/

	st     counters
	ioErrs errorLog
}

// retiree is a fully acknowledged segment file still to be removed.
type retiree struct {
	name    string
	size    int64
	damaged bool
}

// clamp converts the host's time (see clock): a clock stepped back must not
// stall timers or make ages negative.
func (b *Buffer) clamp(now time.Time) time.Time { return b.clock.advance(now) }

// memRecords returns the records in memory, oldest first.
func (b *Buffer) memRecords() []memRecord { return b.mem[b.memHead:] }

// Add accepts one record (a JSON object without its newline) and gives it
// the next sequence number. Add takes ownership of record. It spills when
// memory reaches a limit or the oldest unspilled record reaches
// MaxMemoryAge. It never blocks on the listener and never fails because of
// the disk: a failed spill keeps the records in memory (and, if memory then
// overflows, drops the oldest as memory_full); see TakeIOErrors.
func (b *Buffer) Add(record []byte, now time.Time) error {
	if b.closed {
		return ErrClosed
	}
	if len(record) == 0 {
		return ErrEmptyRecord
	}
	if len(record) > b.cfg.MaxRecordBytes {
		return fmt.Errorf("%w: %d > %d bytes", ErrRecordTooLarge, len(record), b.cfg.MaxRecordBytes)
	}
	now = b.clamp(now)
	b.mem = append(b.mem, memRecord{seq: b.nextSeq, at: now, data: record})
	b.nextSeq++
	b.memBytes += int64(len(record))
	b.st.accepted++
	if b.cfg.Bugs.Has(BugCountTwice) {
		b.st.accepted++
	}
	b.maybeSpill(now)
	return nil
}

// Tick spills memory once its oldest record reaches MaxMemoryAge and
// retries work that failed earlier (spills, removals). The host calls it at
// least every min(MaxMemoryAge/4, 250ms).
func (b *Buffer) Tick(now time.Time) error {
	if b.closed {
		return ErrClosed
	}
	now = b.clamp(now)
	b.retryRetire()
	b.maybeSpill(now)
	return nil
}

// SetFreeBytes passes in the free space of the spool's filesystem, as the
// host last read it; spills keep MinFreeBytes of it in reserve.
func (b *Buffer) SetFreeBytes(n int64) { b.freeBytes = n }

// spillDue reports whether memory must be spilled now.
func (b *Buffer) spillDue(now time.Time) bool {
	recs := b.memRecords()
	if len(recs) == 0 {
		return false
	}
	return len(recs) >= b.cfg.MemoryRecords || b.memBytes >= b.cfg.MemoryBytes ||
		now.Sub(recs[0].at) >= b.cfg.MaxMemoryAge
}

func (b *Buffer) maybeSpill(now time.Time) {
	if b.spillDue(now) && !now.Before(b.spillRetryAt) {
		if err := b.spill(now, false); err != nil {
			b.spillRetryAt = now.Add(b.cfg.SpillRetry)
			b.st.spillFailures++
			b.ioErrs.add(err)
		}
	}
	b.enforceMemory()
}

// enforceMemory drops the oldest records not in flight while memory is over
// a limit, which happens only when spills fail.
func (b *Buffer) enforceMemory() {
	for len(b.memRecords()) > b.cfg.MemoryRecords || b.memBytes > b.cfg.MemoryBytes {
		i := b.memHead + b.inflightInMem()
		if i >= len(b.mem) {
			return // everything left is in flight
		}
		b.memBytes -= int64(len(b.mem[i].data))
		b.mem = append(b.mem[:i], b.mem[i+1:]...)
		b.st.drop(DropMemoryFull, 1)
	}
}

// inflightInMem counts the records of the batch in flight still in memory:
// the batch is a prefix of the queue, disk part first.
func (b *Buffer) inflightInMem() int {
	onDisk := 0
	for i := range b.segs {
		onDisk += b.segs[i].remaining
		if onDisk >= len(b.inflight) {
			return 0
		}
	}
	return len(b.inflight) - onDisk
}

// popMem removes n records from the head of memory.
func (b *Buffer) popMem(n int) {
	for i := b.memHead; i < b.memHead+n; i++ {
		b.memBytes -= int64(len(b.mem[i].data))
		b.mem[i] = memRecord{}
	}
	b.memHead += n
	if b.memHead == len(b.mem) {
		b.mem, b.memHead = b.mem[:0], 0
	} else if b.memHead > 1024 && b.memHead > len(b.mem)/2 {
		b.mem = append(b.mem[:0], b.mem[b.memHead:]...)
		b.memHead = 0
	}
}

// Shutdown spills memory, the batch in flight included, ignoring the disk
// cap (a graceful stop may exceed disk_bytes by at most memory_bytes rather
// than drop), records the acknowledgement mark, and closes the buffer:
// every later call answers ErrClosed. An error wrapping ErrNotSaved means
// records were lost; the host exits non-zero.
func (b *Buffer) Shutdown(now time.Time) error {
	if b.closed {
		return ErrClosed
	}
	now = b.clamp(now)
	b.retryRetire()
	err := b.spill(now, true)
	b.inflight = nil
	if b.meta.AckedThrough < b.ackedThrough {
		m := b.meta
		m.AckedThrough = b.ackedThrough
		if werr := writeMeta(b.fs, b.dir, m); werr == nil {
			b.meta = m
		}
	}
	b.closed = true
	if n := len(b.memRecords()); n > 0 {
		return fmt.Errorf("%w: %d records in memory: %w", ErrNotSaved, n, err)
	}
	return nil
}
