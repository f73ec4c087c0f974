package core

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/spf13/afero"
)

// Report says what Open found and did.
type Report struct {
	AgentID          string
	NewAgent         bool     // a new agent ID was made
	NewAgentReason   string   // why: "new spool", or why spool.meta could not be used
	Segments         int      // segments indexed
	Records          int      // records in them (recovered)
	Bytes            int64    // their file bytes
	TempFilesRemoved int      // leftover partial writes removed
	CorruptRecords   int      // records lost in damaged segments
	Quarantined      []string // damaged files moved to quarantine/
	UnknownFiles     []string // files Open did not recognise and left alone
	// SalvageDeferred lists damaged files whose salvage failed (a full or
	// failing disk), with why; they are retried at the next Open.
	SalvageDeferred []string
}

// Open opens (creating if needed) the spool in dir on fsys and recovers its
// backlog: it removes leftover temp files, indexes segments in sequence
// order from their names and headers (without reading them whole), salvages
// damaged segments (good records into a fresh durable segment first, then
// the damaged file to quarantine/), and reserves a block of sequence numbers
// above anything ever used. A segment or spool.meta of an unknown format
// version is refused with an *UnknownVersionError and left untouched.
func Open(fsys afero.Fs, dir string, cfg Config, now time.Time) (*Buffer, Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, Report{}, err
	}
	b := &Buffer{fs: fsys, dir: dir, cfg: cfg, freeBytes: -1, clock: clock{last: now}}
	if err := b.openDirs(); err != nil {
		return nil, Report{}, err
	}
	var rep Report
	hasSegs, err := b.recoverDir(&rep)
	if err != nil {
		return nil, rep, err
	}
	sort.Slice(b.segs, func(i, j int) bool { return b.segs[i].hdr.First < b.segs[j].hdr.First })
	if err := b.openMeta(&rep, hasSegs); err != nil {
		return nil, rep, err
	}
	for _, s := range b.segs {
		rep.Records += s.remaining
		rep.Bytes += s.size
		b.diskBytes += s.size
	}
	rep.Segments = len(b.segs)
	b.st.recovered += uint64(rep.Records)
	return b, rep, nil
}

func (b *Buffer) openDirs() error {
	if err := ensureDir(b.fs, b.dir); err != nil {
		return err
	}
	var err error
	if b.quar, err = openFolder(b.fs, path.Join(b.dir, quarantineDir), b.cfg.QuarantineBytes, DropQuarantineEvicted); err != nil {
		return err
	}
	b.dead, err = openFolder(b.fs, path.Join(b.dir, deadLetterDir), b.cfg.DeadLetterBytes, DropDeadLetterEvicted)
	return err
}

// recoverDir sorts the spool's entries out: temp files removed, segments
// indexed, damaged ones salvaged. It reports whether any segment, good or
// damaged, was found.
func (b *Buffer) recoverDir(rep *Report) (hasSegments bool, err error) {
	infos, err := afero.ReadDir(b.fs, b.dir)
	if err != nil {
		return false, fmt.Errorf("list spool %s: %w", b.dir, err)
	}
	removedTemp := false
	var damaged []string
	for _, fi := range infos { // ReadDir sorts by name: sequence order
		name := fi.Name()
		switch {
		case fi.IsDir() || name == metaName || name == lockName:
		case hasSuffix(name, tmpSuffix):
			if err := b.fs.Remove(path.Join(b.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("remove leftover temp file %s: %w", name, err)
			}
			rep.TempFilesRemoved++
			removedTemp = true
		case isSegName(name):
			d, err := b.indexSegment(name, fi.Size())
			if err != nil {
				return false, err
			}
			if d {
				damaged = append(damaged, name)
			}
		case isDamagedName(name):
			damaged = append(damaged, name)
		default:
			rep.UnknownFiles = append(rep.UnknownFiles, name)
		}
	}
	if removedTemp {
		if err := syncDir(b.fs, b.dir); err != nil {
			return false, err
		}
	}
	for _, name := range damaged {
		if err := b.salvage(name, rep); err != nil {
			// A full or failing disk must not stop the start (a crash
			// loop refuses every client): the damaged file stays, its
			// records are not counted yet, and a later Open salvages it.
			b.ioErrs.add(err)
			rep.SalvageDeferred = append(rep.SalvageDeferred, name+": "+err.Error())
			b.deliverInPlace(name, rep)
		}
	}
	return len(b.segs) > 0 || len(damaged) > 0, nil
}

// indexSegment reads a segment's header and checks its size against it.
// It reports true when the segment is damaged and must be salvaged.
func (b *Buffer) indexSegment(name string, size int64) (damaged bool, err error) {
	data, err := readFileLimited(b.fs, path.Join(b.dir, name), headerReadSize)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil && len(data) < segmentHeaderSize {
		return true, nil
	}
	hdr, err := parseHeader(data)
	var uv *UnknownVersionError
	if errors.As(err, &uv) {
		uv.File = path.Join(b.dir, name)
		return false, uv
	}
	nameSeq, _ := parseSeqName(name, segSuffix)
	if err != nil || hdr.fileBytes() != size || hdr.First < nameSeq {
		return true, nil
	}
	b.segs = append(b.segs, segment{name: name, hdr: hdr, size: size, remaining: int(hdr.Count)})
	return false, nil
}

// openMeta reads spool.meta, or makes a new agent, and reserves a block of
// sequence numbers above every number on disk or ever reserved.
func (b *Buffer) openMeta(rep *Report, hasSegments bool) error {
	m, err := readMeta(b.fs, b.dir)
	var uv *UnknownVersionError
	switch {
	case errors.As(err, &uv):
		uv.File = path.Join(b.dir, metaName)
		return uv
	case err != nil:
		rep.NewAgent = true
		rep.NewAgentReason = "new spool"
		if !errors.Is(err, errMetaMissing) || hasSegments {
			// Numbers reserved by the unreadable meta are unknown: a new
			// agent makes sure none can clash at the listener.
			rep.NewAgentReason = err.Error()
		}
		id, err := newAgentID(b.cfg.Entropy)
		if err != nil {
			return err
		}
		m = meta{AgentID: id}
	}
	b.meta = m
	if rep.NewAgent {
		b.meta.Version = 0 // not durable yet: reserve writes it
	}
	top := m.ReservedThrough
	if n := len(b.segs); n > 0 {
		top = max(top, b.segs[n-1].hdr.Last)
	}
	b.nextSeq = top + 1
	b.redeliverMax = m.AckedThrough
	b.ackedThrough = m.AckedThrough
	rep.AgentID = m.AgentID
	if err := b.reserve(b.nextSeq); err != nil {
		b.ioErrs.add(err) // retried before any number is used
	}
	return nil
}
