package core

import (
	"fmt"
	"path"
	"time"
)

// spill writes every record in memory to segments of at most SegmentBytes,
// oldest first. Each segment is durable (temp, write, fsync, close, rename,
// directory fsync) BEFORE its records leave memory, and its sequence numbers
// are reserved in a durable spool.meta BEFORE the segment is written. With
// ignoreCap (graceful shutdown) the disk cap is not applied.
func (b *Buffer) spill(now time.Time, ignoreCap bool) error {
	for len(b.memRecords()) > 0 {
		chunk := b.nextChunk()
		if !b.cfg.Bugs.Has(BugSeqBeforeDurable) {
			if err := b.reserve(chunk[len(chunk)-1].seq); err != nil {
				return err
			}
		}
		data := appendSegment(b.encBuf, chunk)
		b.encBuf = data
		if !ignoreCap && !b.fits(int64(len(data))) {
			progressed, err := b.makeRoom(len(chunk))
			if err != nil || !progressed {
				return err // nothing gave way: the records stay in memory
			}
			continue // look again: fewer records, or more room
		}
		if err := b.writeSegment(chunk, data); err != nil {
			return err
		}
		if b.cfg.Bugs.Has(BugSeqBeforeDurable) {
			if err := b.reserve(chunk[len(chunk)-1].seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// nextChunk returns the oldest records in memory that fit one segment (at
// least one record).
func (b *Buffer) nextChunk() []memRecord {
	recs := b.memRecords()
	return recs[:firstSegment(recs, b.cfg.SegmentBytes)]
}

// firstSegment returns how many of recs fill one segment of at most
// segmentBytes (at least one record: a larger one gets a segment alone).
func firstSegment(recs []memRecord, segmentBytes int64) int {
	size := int64(segmentHeaderSize)
	n := 0
	for n < len(recs) {
		size += int64(frameHeaderSize + len(recs[n].data))
		if n > 0 && size > segmentBytes {
			break
		}
		n++
	}
	return n
}

// writeSegment makes chunk durable as one segment file and moves its
// records from memory to the disk backlog.
func (b *Buffer) writeSegment(chunk []memRecord, data []byte) error {
	name := segName(chunk[0].seq)
	b.diskBytes += int64(len(data)) // the temp file counts against disk_bytes too
	err := writeDurable(b.fs, b.dir, name+tmpSuffix, name, data, b.cfg.Bugs.Has(BugSkipDirSync))
	if err != nil {
		b.diskBytes -= int64(len(data))
		return fmt.Errorf("spill %d records to %s: %w", len(chunk), path.Join(b.dir, name), err)
	}
	if b.freeBytes >= 0 {
		b.freeBytes -= int64(len(data))
	}
	hdr, _ := parseHeader(data)
	b.segs = append(b.segs, segment{name: name, hdr: hdr, size: int64(len(data)), remaining: len(chunk)})
	b.popMem(len(chunk))
	b.st.spilledSegments++
	return nil
}

// reserve makes sure seq is covered by a durable reservation, writing
// spool.meta with a new block if it is not.
func (b *Buffer) reserve(seq uint64) error {
	if seq <= b.meta.ReservedThrough && b.meta.Version != 0 {
		return nil
	}
	m := b.meta
	m.Version = metaVersion
	m.ReservedThrough = max(seq, b.nextSeq-1) + b.cfg.SeqBlock
	m.AckedThrough = max(m.AckedThrough, b.ackedThrough)
	if err := writeMeta(b.fs, b.dir, m); err != nil {
		b.st.metaFailures++
		return fmt.Errorf("reserve sequence numbers: %w", err)
	}
	b.meta = m
	return nil
}

// makeRoom makes progress towards room for a spill of the next n records
// in memory, by when_full: drop_oldest evicts the oldest segment not in
// flight, drop_newest drops those n records (except any in flight). It
// reports false when nothing could give way.
func (b *Buffer) makeRoom(n int) (bool, error) {
	if b.cfg.WhenFull == DropNewest {
		return b.dropNewest(n) > 0, nil
	}
	return b.evictOldest()
}

func (b *Buffer) fits(size int64) bool {
	if b.diskBytes+size > b.cfg.DiskBytes {
		return false
	}
	return b.freeBytes < 0 || b.freeBytes-size >= b.cfg.MinFreeBytes
}

// dropNewest drops the next n records in memory except those in flight and
// returns how many it dropped.
func (b *Buffer) dropNewest(n int) int {
	keep := min(b.inflightInMem(), n)
	for i := b.memHead + keep; i < b.memHead+n; i++ {
		b.memBytes -= int64(len(b.mem[i].data))
	}
	b.mem = append(b.mem[:b.memHead+keep], b.mem[b.memHead+n:]...)
	b.st.drop(DropDiskFullNewest, n-keep)
	return n - keep
}

// evictOldest deletes the oldest segment holding no record in flight,
// counting its records as disk_full_oldest. It reports false when no
// segment can be evicted.
func (b *Buffer) evictOldest() (bool, error) {
	covered := 0
	for i := range b.segs {
		s := b.segs[i]
		if covered >= len(b.inflight) {
			if err := removeDurable(b.fs, b.dir, s.name); err != nil {
				return false, fmt.Errorf("evict %s at the disk cap: %w", s.name, err)
			}
			b.diskBytes -= s.size
			if b.freeBytes >= 0 {
				b.freeBytes += s.size
			}
			b.st.drop(DropDiskFullOldest, s.remaining)
			b.segs = append(b.segs[:i], b.segs[i+1:]...)
			return true, nil
		}
		covered += s.remaining
	}
	return false, nil
}
