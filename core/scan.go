package core

import (
	"errors"
	"io/fs"
	"path"
	"time"

	"github.com/spf13/afero"
)

// ScanOptions tune Scan.
type ScanOptions struct {
	Verify   bool                  // read every segment whole and check every frame's CRC
	Progress func(done, total int) // called after each segment, if set
}

// SegmentInfo describes one segment as Scan saw it.
type SegmentInfo struct {
	Name        string
	First, Last uint64
	Records     int
	Bytes       int64
	Oldest      time.Time
	Problem     string   // why the segment is damaged, "" if it looks sound
	Damage      []Damage // with Verify: stretches without a valid frame
	BadRecords  int      // with Verify: records the header promises but no valid frame holds
}

// FolderInfo sums up quarantine/ or dead-letter/.
type FolderInfo struct {
	Files   int
	Bytes   int64
	Records int // from the files' headers where readable
}

// ScanReport is what a read-only look at a spool found.
type ScanReport struct {
	AgentID         string
	FormatVersion   int
	ReservedThrough uint64
	MetaProblem     string // why spool.meta could not be read, "" if it was
	Segments        []SegmentInfo
	Records         int
	Bytes           int64
	FirstSeq        uint64
	LastSeq         uint64
	Oldest          time.Time // arrival of the oldest record on disk
	TempFiles       int
	TempBytes       int64
	Damaged         int // segments with a Problem
	Vanished        int // files that disappeared while being scanned (the daemon deleted them)
	Quarantine      FolderInfo
	DeadLetter      FolderInfo
}

// Scan looks at a spool without changing it: it goes through a read-only
// filesystem, so it cannot write, rename or remove, and it tolerates files
// vanishing under it (a running daemon acknowledges and deletes segments).
// It is what the inspect command uses while the daemon runs.
func Scan(fsys afero.Fs, dir string, opts ScanOptions) (ScanReport, error) {
	ro := afero.NewReadOnlyFs(fsys)
	var rep ScanReport
	scanMeta(ro, dir, &rep)
	infos, err := afero.ReadDir(ro, dir)
	if err != nil {
		return rep, err
	}
	var segs []fs.FileInfo
	for _, fi := range infos {
		switch name := fi.Name(); {
		case hasSuffix(name, tmpSuffix):
			rep.TempFiles++
			rep.TempBytes += fi.Size()
		case isSegName(name) || isDamagedName(name):
			segs = append(segs, fi)
		}
	}
	for i, fi := range segs {
		if info, ok := scanSegment(ro, dir, fi, opts.Verify); ok {
			rep.add(info)
		} else {
			rep.Vanished++
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(segs))
		}
	}
	rep.Quarantine = scanFolder(ro, path.Join(dir, quarantineDir))
	rep.DeadLetter = scanFolder(ro, path.Join(dir, deadLetterDir))
	return rep, nil
}

func (rep *ScanReport) add(info SegmentInfo) {
	rep.Segments = append(rep.Segments, info)
	if info.Problem != "" {
		rep.Damaged++
	}
	rep.Records += info.Records - info.BadRecords
	rep.Bytes += info.Bytes
	if info.Records > 0 && (rep.FirstSeq == 0 || info.First < rep.FirstSeq) {
		rep.FirstSeq = info.First
	}
	rep.LastSeq = max(rep.LastSeq, info.Last)
	if info.Records > 0 && (rep.Oldest.IsZero() || info.Oldest.Before(rep.Oldest)) {
		rep.Oldest = info.Oldest
	}
}

func scanMeta(ro afero.Fs, dir string, rep *ScanReport) {
	m, err := readMeta(ro, dir)
	var uv *UnknownVersionError
	switch {
	case errors.As(err, &uv):
		rep.FormatVersion = uv.Version
		rep.MetaProblem = err.Error()
	case err != nil:
		rep.MetaProblem = err.Error()
	default:
		rep.AgentID, rep.FormatVersion, rep.ReservedThrough = m.AgentID, m.Version, m.ReservedThrough
	}
}

// scanSegment reads a segment's header (and with verify its frames). It
// reports false if the file vanished.
func scanSegment(ro afero.Fs, dir string, fi fs.FileInfo, verify bool) (SegmentInfo, bool) {
	info := SegmentInfo{Name: fi.Name(), Bytes: fi.Size()}
	limit := int64(segmentHeaderSize)
	if verify {
		limit = fi.Size()
	}
	data, err := readFileLimited(ro, path.Join(dir, fi.Name()), limit)
	if errors.Is(err, fs.ErrNotExist) {
		return info, false
	}
	hdr, herr := parseHeader(data)
	switch {
	case isDamagedName(fi.Name()):
		info.Problem = "set aside as damaged; the next start salvages it"
	case herr != nil:
		info.Problem = herr.Error()
	case hdr.fileBytes() != fi.Size():
		info.Problem = "size disagrees with the header: cut short or extended"
	}
	if herr == nil {
		info.First, info.Last, info.Records = hdr.First, hdr.Last, int(hdr.Count)
		info.Oldest = time.Unix(0, hdr.OldestNanos)
	}
	if verify && herr == nil && int64(len(data)) >= segmentHeaderSize {
		recs, damage := decodeFrames(data[segmentHeaderSize:], segmentHeaderSize, hdr.First, hdr.Last)
		info.Damage, info.BadRecords = damage, max(int(hdr.Count)-len(recs), 0)
		if len(damage) > 0 && info.Problem == "" {
			info.Problem = "frames fail their CRC"
		}
	}
	return info, true
}

func scanFolder(ro afero.Fs, dir string) FolderInfo {
	var fi FolderInfo
	infos, err := afero.ReadDir(ro, dir)
	if err != nil {
		return fi
	}
	for _, f := range infos {
		if f.Mode().IsRegular() {
			fi.Files++
			fi.Bytes += f.Size()
			fi.Records += headerCount(ro, path.Join(dir, f.Name()))
		}
	}
	return fi
}
