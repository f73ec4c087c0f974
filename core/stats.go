package core

import (
	"fmt"
	"time"
)

// counters are the monotonic counts of one process.
type counters struct {
	recovered, accepted, delivered, redelivered  uint64
	dropped                                      [len(dropIndex)]uint64
	spilledSegments, spillFailures, metaFailures uint64
	readFailures, corruptRecords                 uint64
	quarantinedFiles, deadLetterFiles            uint64
	evictedFiles                                 uint64
}

// dropIndex gives each drop reason its slot; DropReasons is the order.
var dropIndex = [...]DropReason{
	DropDiskFullOldest, DropDiskFullNewest, DropMemoryFull, DropTooLarge,
	DropPoison, DropQuarantineEvicted, DropDeadLetterEvicted, DropCorrupt,
}

func (c *counters) drop(reason DropReason, n int) {
	for i, r := range dropIndex {
		if r == reason {
			c.dropped[i] += uint64(n)
			return
		}
	}
	panic(fmt.Sprintf("core: unknown drop reason %q", reason)) // a programmer error
}

// Stats is a snapshot of a Buffer's counters (since Open) and gauges.
type Stats struct {
	AgentID string

	Recovered   uint64 // records Open found on disk
	Accepted    uint64 // records Add accepted (records_received_total)
	Delivered   uint64 // records acknowledged by the listener
	Redelivered uint64 // delivered records an earlier process had already delivered
	Dropped     map[DropReason]uint64

	MemoryRecords   int   // in memory, not in flight
	MemoryBytes     int64 // bytes of all records in memory, in flight or not
	DiskRecords     int   // in segments, not in flight
	DiskBytes       int64 // segment and temp files
	DiskSegments    int
	InFlightRecords int

	QuarantineFiles, DeadLetterFiles int
	QuarantineBytes, DeadLetterBytes int64

	SpilledSegments, SpillFailures, MetaFailures, ReadFailures uint64
	CorruptRecords, EvictedFiles                               uint64

	OldestRecordAge time.Duration // age of the oldest queued record: the delivery lag
}

// DroppedFromBuffer sums the drops of records that were in the buffer. The
// *_evicted reasons count records lost a second time, from quarantine/ or
// dead-letter/, and are not part of the conservation identity.
func (s Stats) DroppedFromBuffer() uint64 {
	var n uint64
	for r, v := range s.Dropped {
		if r != DropQuarantineEvicted && r != DropDeadLetterEvicted {
			n += v
		}
	}
	return n
}

// CheckConservation verifies the identity of DESIGN 4.4:
// recovered + accepted = delivered + dropped + memory + disk + in flight.
func (s Stats) CheckConservation() error {
	in := s.Recovered + s.Accepted
	out := s.Delivered + s.DroppedFromBuffer() + uint64(s.MemoryRecords) + uint64(s.DiskRecords) + uint64(s.InFlightRecords)
	if in != out {
		return fmt.Errorf("conservation broken: recovered %d + accepted %d = %d, but delivered %d + dropped %d + memory %d + disk %d + in flight %d = %d",
			s.Recovered, s.Accepted, in, s.Delivered, s.DroppedFromBuffer(), s.MemoryRecords, s.DiskRecords, s.InFlightRecords, out)
	}
	return nil
}

// Stats returns the counters and gauges. It works on a closed buffer too.
func (b *Buffer) Stats(now time.Time) Stats {
	now = b.clamp(now)
	s := Stats{
		AgentID: b.meta.AgentID, Recovered: b.st.recovered, Accepted: b.st.accepted,
		Delivered: b.st.delivered, Redelivered: b.st.redelivered,
		Dropped:         make(map[DropReason]uint64, len(dropIndex)),
		MemoryBytes:     b.memBytes,
		DiskBytes:       b.diskBytes,
		DiskSegments:    len(b.segs),
		InFlightRecords: len(b.inflight),
		SpilledSegments: b.st.spilledSegments, SpillFailures: b.st.spillFailures,
		MetaFailures: b.st.metaFailures, ReadFailures: b.st.readFailures,
		CorruptRecords: b.st.corruptRecords, EvictedFiles: b.st.evictedFiles,
	}
	for i, r := range dropIndex {
		s.Dropped[r] = b.st.dropped[i]
	}
	inMem := b.inflightInMem()
	s.MemoryRecords = len(b.memRecords()) - inMem
	for _, seg := range b.segs {
		s.DiskRecords += seg.remaining
	}
	s.DiskRecords -= len(b.inflight) - inMem
	if b.quar != nil {
		s.QuarantineFiles, s.QuarantineBytes = len(b.quar.files), b.quar.bytes
		s.DeadLetterFiles, s.DeadLetterBytes = len(b.dead.files), b.dead.bytes
	}
	if oldest, ok := b.oldestArrival(); ok && now.After(oldest) {
		s.OldestRecordAge = now.Sub(oldest)
	}
	return s
}

// oldestArrival is the arrival time of the record at the head of the queue.
func (b *Buffer) oldestArrival() (time.Time, bool) {
	if len(b.segs) > 0 {
		return time.Unix(0, b.segs[0].hdr.OldestNanos), true
	}
	if mem := b.memRecords(); len(mem) > 0 {
		return mem[0].at, true
	}
	return time.Time{}, false
}

// errorLog keeps the latest I/O errors for the host to log, bounded.
type errorLog struct {
	errs    []error
	dropped int
}

const maxLoggedErrors = 32

func (l *errorLog) add(err error) {
	if len(l.errs) >= maxLoggedErrors {
		l.dropped++
		return
	}
	l.errs = append(l.errs, err)
}

// TakeIOErrors returns the I/O errors met since the last call (spills,
// removals, evictions that failed and will be retried) and how many more
// were not kept. The host logs them, rate-limited.
func (b *Buffer) TakeIOErrors() (errs []error, more int) {
	errs, more = b.ioErrs.errs, b.ioErrs.dropped
	b.ioErrs = errorLog{}
	return errs, more
}
