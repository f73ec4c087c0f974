package core

import (
	"fmt"
	"math"
	"path"
	"time"

	"github.com/spf13/afero"
)

// RequeueReport says what Requeue did.
type RequeueReport struct {
	Files    int // source files emptied and removed
	Records  int // records put back into the spool
	Skipped  int // records left out because the spool already holds them
	Damaged  int // stretches of a source file with no valid frame (their records are gone)
	Segments int // segments written
}

// Requeue puts the records of dead-letter or quarantined files (paths on
// fsys, in segment format) back into the spool in dir for delivery. Only
// one process may hold a spool: the host runs Requeue with the daemon
// stopped and spool.lock held.
//
// Records keep their original sequence numbers, so a listener that drops
// duplicates by (agent, seq) sees a requeued record that was in fact
// delivered as the duplicate it is. A record whose number the spool still
// holds is skipped, never duplicated. Each source file is removed only
// AFTER its records are in durable segments, so a crash in between leaves
// the file behind and a second run skips what the first one saved.
func Requeue(fsys afero.Fs, dir string, cfg Config, sources []string, now time.Time) (RequeueReport, error) {
	b, _, err := Open(fsys, dir, cfg, now)
	if err != nil {
		return RequeueReport{}, err
	}
	var rep RequeueReport
	present := map[string]map[uint64]bool{} // segment name -> sequence numbers in it
	for _, src := range sources {
		if err := b.requeueFile(src, present, &rep); err != nil {
			return rep, fmt.Errorf("requeue %s: %w", src, err)
		}
	}
	return rep, nil
}

func (b *Buffer) requeueFile(src string, present map[string]map[uint64]bool, rep *RequeueReport) error {
	data, err := readFileLimited(b.fs, src, math.MaxInt32)
	if err != nil {
		return err
	}
	lo, hi, base, at := uint64(0), uint64(math.MaxUint64), int64(0), b.clock.last
	if hdr, err := parseHeader(data); err == nil {
		lo, hi, base, at = hdr.First, hdr.Last, segmentHeaderSize, time.Unix(0, hdr.OldestNanos)
	}
	good, damage := decodeFrames(data[base:], base, lo, hi)
	rep.Damaged += len(damage)
	var recs []memRecord
	for _, r := range good {
		inSpool, err := b.spoolHolds(r.Seq, present)
		if err != nil {
			return err
		}
		if inSpool {
			rep.Skipped++
			continue
		}
		recs = append(recs, memRecord{seq: r.Seq, at: at, data: r.Data})
	}
	if err := b.writeRequeued(recs, rep); err != nil {
		return err
	}
	if err := removeDurable(b.fs, path.Dir(src), path.Base(src)); err != nil {
		return err
	}
	rep.Files++
	return nil
}

// spoolHolds reports whether a segment of the spool holds seq, reading
// (once) the segments whose range covers it.
func (b *Buffer) spoolHolds(seq uint64, present map[string]map[uint64]bool) (bool, error) {
	for _, s := range b.segs {
		if seq < s.hdr.First || seq > s.hdr.Last {
			continue
		}
		seqs, ok := present[s.name]
		if !ok {
			data, err := readFileLimited(b.fs, path.Join(b.dir, s.name), s.size)
			if err != nil {
				return false, fmt.Errorf("read segment %s: %w", s.name, err)
			}
			recs, _ := decodeFrames(data[min(int64(len(data)), segmentHeaderSize):], segmentHeaderSize, s.hdr.First, s.hdr.Last)
			seqs = map[uint64]bool{}
			for _, r := range recs {
				seqs[r.Seq] = true
			}
			present[s.name] = seqs
		}
		if seqs[seq] {
			return true, nil
		}
	}
	return false, nil
}

// writeRequeued writes recs as durable segments of at most SegmentBytes.
func (b *Buffer) writeRequeued(recs []memRecord, rep *RequeueReport) error {
	for len(recs) > 0 {
		n := firstSegment(recs, b.cfg.SegmentBytes)
		name := segName(recs[0].seq)
		if b.exists(name) {
			return fmt.Errorf("segment %s already exists and does not hold record %d: move it away and run again", name, recs[0].seq)
		}
		data := encodeSegment(recs[:n])
		if err := writeDurable(b.fs, b.dir, name+tmpSuffix, name, data, false); err != nil {
			return err
		}
		hdr, _ := parseHeader(data)
		b.segs = append(b.segs, segment{name: name, hdr: hdr, size: int64(len(data)), remaining: n})
		rep.Segments++
		rep.Records += n
		recs = recs[n:]
	}
	return nil
}
