package core

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/afero"
)

// folder is quarantine/ or dead-letter/: files kept for an operator, capped
// in bytes, oldest (lowest name) removed first.
type folder struct {
	dir     string
	cap     int64
	evicted DropReason
	files   []folderFile // sorted by name
	bytes   int64
}

type folderFile struct {
	name    string
	size    int64
	records int // from the header when it is readable, else 0
}

// openFolder creates the folder if needed and indexes its files.
func openFolder(fsys afero.Fs, dir string, capBytes int64, evicted DropReason) (*folder, error) {
	if err := ensureDir(fsys, dir); err != nil {
		return nil, err
	}
	infos, err := afero.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	f := &folder{dir: dir, cap: capBytes, evicted: evicted}
	for _, fi := range infos {
		if fi.Mode().IsRegular() {
			f.files = append(f.files, folderFile{name: fi.Name(), size: fi.Size(), records: headerCount(fsys, path.Join(dir, fi.Name()))})
			f.bytes += fi.Size()
		}
	}
	return f, nil
}

// headerCount returns the record count of a segment-format file, or 0.
func headerCount(fsys afero.Fs, name string) int {
	data, err := readFileLimited(fsys, name, segmentHeaderSize)
	if err != nil {
		return 0
	}
	h, err := parseHeader(data)
	if err != nil {
		return 0
	}
	return int(h.Count)
}

// maxNameTries bounds the search for a free name in a folder.
const maxNameTries = 1000

// freeName returns name, or name with a numeric suffix if it is taken.
func (f *folder) freeName(fsys afero.Fs, name string) (string, error) {
	candidate := name
	for i := 1; i <= maxNameTries; i++ {
		_, err := fsys.Stat(path.Join(f.dir, candidate))
		if errors.Is(err, fs.ErrNotExist) {
			return candidate, nil
		}
		if err != nil {
			return "", fmt.Errorf("look for a free name in %s: %w", f.dir, err)
		}
		candidate = name + "." + strconv.Itoa(i)
	}
	return "", fmt.Errorf("no free name for %s in %s after %d tries: clean the folder", name, f.dir, maxNameTries)
}

// added records a new file and applies the cap.
func (f *folder) added(fsys afero.Fs, ff folderFile, st *counters) error {
	i := sort.Search(len(f.files), func(i int) bool { return f.files[i].name >= ff.name })
	f.files = append(f.files[:i], append([]folderFile{ff}, f.files[i:]...)...)
	f.bytes += ff.size
	return f.enforce(fsys, ff.name, st)
}

// enforce evicts the oldest files while the folder is over its cap (never
// keep, the file just added), counting their records as evicted. A failed
// removal is retried by the next enforce (Tick calls it).
func (f *folder) enforce(fsys afero.Fs, keep string, st *counters) error {
	for f.bytes > f.cap && len(f.files) > 1 {
		victim := 0
		if f.files[0].name == keep {
			victim = 1
		}
		v := f.files[victim]
		if err := removeDurable(fsys, f.dir, v.name); err != nil {
			return fmt.Errorf("evict %s over its cap: %w", path.Join(f.dir, v.name), err)
		}
		f.files = append(f.files[:victim], f.files[victim+1:]...)
		f.bytes -= v.size
		st.drop(f.evicted, v.records)
		st.evictedFiles++
	}
	return nil
}

// quarantine moves a damaged file of the spool into quarantine/ under the
// name as (or as with a suffix, if taken) and applies the cap. It returns
// the name it got, "" if the move failed.
func (b *Buffer) quarantine(file, as string, size int64) (string, error) {
	q := b.quar
	dest, err := q.freeName(b.fs, as)
	if err != nil {
		return "", err
	}
	if err := moveDurable(b.fs, b.dir, file, q.dir, dest); err != nil {
		return "", err
	}
	b.st.quarantinedFiles++
	return dest, q.added(b.fs, folderFile{name: dest, size: size, records: headerCount(b.fs, path.Join(q.dir, dest))}, &b.st)
}

// DeadLetter resolves the batch in flight by writing its records to
// dead-letter/ (in segment format, durable) and dropping them with reason
// (DropPoison or DropTooLarge). If the write fails the batch stays in
// flight and the error is returned: nothing is dropped unrecorded.
func (b *Buffer) DeadLetter(reason DropReason, now time.Time) error {
	if b.closed {
		return ErrClosed
	}
	if b.inflight == nil {
		return ErrNoBatch
	}
	now = b.clamp(now)
	recs := make([]memRecord, len(b.inflight))
	for i, r := range b.inflight {
		recs[i] = memRecord{seq: r.Seq, at: now, data: r.Data}
	}
	data := encodeSegment(recs)
	name := fmt.Sprintf("%0*d%s", seqDigits, recs[0].seq, deadSuffix)
	dl := b.dead
	name, err := dl.freeName(b.fs, name)
	if err != nil {
		return err
	}
	if err := writeDurable(b.fs, dl.dir, name+tmpSuffix, name, data, false); err != nil {
		// The rename may have happened before a failed directory fsync:
		// the retry writes under a new name, so this one must not linger
		// uncounted against the cap.
		_ = b.fs.Remove(path.Join(dl.dir, name))
		return fmt.Errorf("dead-letter %d records: %w", len(recs), err)
	}
	b.st.deadLetterFiles++
	b.st.drop(reason, len(recs))
	b.removeInflight()
	if err := dl.added(b.fs, folderFile{name: name, size: int64(len(data)), records: len(recs)}, &b.st); err != nil {
		b.ioErrs.add(err)
	}
	return nil
}
