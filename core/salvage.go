package core

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strings"
	"time"
)

func hasSuffix(name, suffix string) bool { return strings.HasSuffix(name, suffix) }

func isSegName(name string) bool {
	_, ok := parseSeqName(name, segSuffix)
	return ok
}

func isDamagedName(name string) bool {
	_, ok := parseSeqName(name, segSuffix+damagedSuffix)
	return ok
}

func (b *Buffer) exists(name string) bool {
	_, err := b.fs.Stat(path.Join(b.dir, name))
	return !errors.Is(err, fs.ErrNotExist)
}

// salvage rescues a damaged segment without ever holding its good records
// in one place only in memory. Crash-safe in every step:
//  1. rename X.seg to X.seg.damaged (Open salvages .damaged files again);
//  2. write the good records to a fresh, durable X.seg;
//  3. move X.seg.damaged to quarantine/ (an X.seg beside it means step 2
//     finished, so a later Open only does this step).
func (b *Buffer) salvage(name string, rep *Report) error {
	segFile := strings.TrimSuffix(name, damagedSuffix)
	damagedFile := segFile + damagedSuffix
	if name == segFile {
		if b.exists(damagedFile) { // an earlier salvage of the same name finished
			if err := b.quarantineAtOpen(damagedFile, segFile, rep); err != nil {
				return err
			}
		}
		if err := b.fs.Rename(path.Join(b.dir, segFile), path.Join(b.dir, damagedFile)); err != nil {
			return fmt.Errorf("set damaged segment %s aside: %w", segFile, err)
		}
		if err := syncDir(b.fs, b.dir); err != nil {
			return err
		}
	} else if !b.exists(damagedFile) {
		return nil // handled with its segment above
	} else if b.exists(segFile) {
		return b.quarantineAtOpen(damagedFile, segFile, rep)
	}
	lost, err := b.rewriteGood(damagedFile, segFile)
	if err != nil {
		return err
	}
	b.countLost(lost, rep) // the good records are durable: the loss is final
	return b.quarantineAtOpen(damagedFile, segFile, rep)
}

// rewriteGood writes the good records of a damaged file into segFile and
// returns how many records the file lost.
func (b *Buffer) rewriteGood(damagedFile, segFile string) (lost int, err error) {
	data, err := readFileLimited(b.fs, path.Join(b.dir, damagedFile), math.MaxInt32)
	if err != nil {
		return 0, fmt.Errorf("read damaged segment %s: %w", damagedFile, err)
	}
	good, lost, oldest := b.goodRecords(data, segFile)
	if len(good) == 0 {
		return lost, nil
	}
	recs := make([]memRecord, len(good))
	for i, r := range good {
		recs[i] = memRecord{seq: r.Seq, at: oldest, data: r.Data}
	}
	fresh := encodeSegment(recs)
	if err := writeDurable(b.fs, b.dir, segFile+tmpSuffix, segFile, fresh, false); err != nil {
		return 0, fmt.Errorf("salvage %s: %w", damagedFile, err)
	}
	h, _ := parseHeader(fresh)
	b.segs = append(b.segs, segment{name: segFile, hdr: h, size: int64(len(fresh)), remaining: len(recs)})
	return lost, nil
}

// goodRecords decodes the valid frames of a damaged segment file named
// after segFile, and says how many records it lost and when the oldest
// arrived.
func (b *Buffer) goodRecords(data []byte, segFile string) (good []Record, lost int, oldest time.Time) {
	nameSeq, _ := parseSeqName(segFile, segSuffix)
	lo, hi, base, oldest := nameSeq, uint64(math.MaxUint64), int64(0), b.clock.last
	hdr, herr := parseHeader(data)
	if herr == nil {
		lo, hi, base, oldest = max(hdr.First, nameSeq), hdr.Last, segmentHeaderSize, time.Unix(0, hdr.OldestNanos)
	}
	good, _ = decodeFrames(data[base:], base, lo, hi)
	return good, estimateLost(hdr, herr == nil, nameSeq, good), oldest
}

// countLost counts records a damaged segment lost: found on disk, then
// dropped as corrupt, so the identity stays exact.
func (b *Buffer) countLost(lost int, rep *Report) {
	rep.CorruptRecords += lost
	b.st.corruptRecords += uint64(lost)
	b.st.recovered += uint64(lost)
	b.st.drop(DropCorrupt, lost)
}

// estimateLost counts the records a damaged segment lost: exactly, from its
// header, or, with the header gone too, from the gaps between good records.
func estimateLost(hdr segmentHeader, hdrOK bool, nameSeq uint64, good []Record) int {
	if hdrOK {
		return max(int(hdr.Count)-len(good), 0)
	}
	if len(good) == 0 {
		return 0 // nothing tells how many there were
	}
	span := good[len(good)-1].Seq - nameSeq + 1
	return int(span) - len(good)
}

func (b *Buffer) quarantineAtOpen(damagedFile, segFile string, rep *Report) error {
	fi, err := b.fs.Stat(path.Join(b.dir, damagedFile))
	if err != nil {
		return fmt.Errorf("stat %s: %w", damagedFile, err)
	}
	dest, err := b.quarantine(damagedFile, segFile, fi.Size())
	if dest != "" {
		rep.Quarantined = append(rep.Quarantined, dest)
	}
	return err
}

// deliverInPlace queues the good records of a damaged file whose salvage
// failed (a full disk), reading them from the damaged file itself: they
// keep their place in sequence order instead of waiting for a later Open,
// and the file goes to quarantine/ once they are acknowledged.
func (b *Buffer) deliverInPlace(name string, rep *Report) {
	segFile := strings.TrimSuffix(name, damagedSuffix)
	for _, s := range b.segs {
		if s.name == segFile {
			return // the fresh segment was written: its records are queued
		}
	}
	for _, file := range []string{segFile + damagedSuffix, segFile} {
		fi, err := b.fs.Stat(path.Join(b.dir, file))
		if err != nil {
			continue
		}
		data, err := readFileLimited(b.fs, path.Join(b.dir, file), fi.Size())
		if err != nil {
			return // unreadable now: the next Open tries again
		}
		good, lost, oldest := b.goodRecords(data, segFile)
		b.countLost(lost, rep)
		if len(good) == 0 {
			return
		}
		h := segmentHeader{Version: segmentVersion, Count: uint32(len(good)), First: good[0].Seq, Last: good[len(good)-1].Seq, OldestNanos: oldest.UnixNano()}
		b.segs = append(b.segs, segment{name: file, hdr: h, size: fi.Size(), remaining: len(good), damaged: true, wholeScan: true})
		return
	}
}
