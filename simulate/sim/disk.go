package sim

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/bitville/apmd/fsadapter"
	"github.com/spf13/afero"
)

// The spool layout, re-implemented from core/FORMAT.md rather than
// imported: the simulator reads the disk as an independent witness.
const (
	spoolDir       = "/spool"
	segHeaderSize  = 56
	frameHdrSize   = 20
	segMagic       = "BVAPMSEG"
	segSuffix      = ".seg"
	damagedSuffix  = ".seg.damaged"
	tmpSuffix      = ".tmp"
	quarantinePath = spoolDir + "/quarantine"
	deadLetterPath = spoolDir + "/dead-letter"
	maxFrameBytes  = 1 << 26 // far above any record the simulator makes
)

var (
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
	frameMarker = []byte{0xB7, 0x5E, 0xAF, 0x1E}
)

// diskRecord is one well-formed frame found in a segment file.
type diskRecord struct {
	seq  uint64
	data []byte
}

// parseFrames returns every frame of a segment file whose CRC matches. It
// resyncs on the frame marker, like core, but shares no code with it: a
// frame core wrote wrongly is not found here either. With a bad header it
// searches the whole file.
func parseFrames(file []byte) []diskRecord {
	start := 0
	if len(file) >= segHeaderSize && string(file[:8]) == segMagic &&
		binary.LittleEndian.Uint32(file[48:52]) == crc32.Checksum(file[:48], castagnoli) {
		start = segHeaderSize
	}
	var out []diskRecord
	for off := start; off+frameHdrSize <= len(file); {
		i := bytes.Index(file[off:], frameMarker)
		if i < 0 {
			break
		}
		off += i
		if rec, n, ok := frameAt(file, off); ok {
			out = append(out, rec)
			off += n
			continue
		}
		off++
	}
	return out
}

// frameAt decodes the frame at off, if it is whole and its CRC matches.
func frameAt(file []byte, off int) (diskRecord, int, bool) {
	if off+frameHdrSize > len(file) {
		return diskRecord{}, 0, false
	}
	le := binary.LittleEndian
	n := int(le.Uint32(file[off+4:]))
	end := off + frameHdrSize + n
	if n < 1 || n > maxFrameBytes || end > len(file) {
		return diskRecord{}, 0, false
	}
	crc := crc32.Update(crc32.Checksum(file[off+4:off+16], castagnoli), castagnoli, file[off+frameHdrSize:end])
	if crc != le.Uint32(file[off+16:]) {
		return diskRecord{}, 0, false
	}
	return diskRecord{seq: le.Uint64(file[off+8:]), data: file[off+frameHdrSize : end]}, frameHdrSize + n, true
}

// isSpoolSegment reports whether name is a segment, or a damaged segment
// that Open salvages: the files whose records a new process recovers.
func isSpoolSegment(name string) bool {
	return strings.HasSuffix(name, segSuffix) || strings.HasSuffix(name, damagedSuffix)
}

// scanSpool returns every well-formed record in the spool's segment files,
// as a reader sees them now, in name order. It reads the CrashFS directly,
// so its reads are never counted as the process's operations nor failed.
func scanSpool(fs *fsadapter.CrashFS) []diskRecord {
	var out []diskRecord
	for _, name := range dirFiles(fs, spoolDir) {
		if !isSpoolSegment(name) {
			continue
		}
		data, err := afero.ReadFile(fs, path.Join(spoolDir, name))
		if err != nil {
			continue
		}
		out = append(out, parseFrames(data)...)
	}
	return out
}

// dirFiles lists the regular files of dir, sorted by name.
func dirFiles(fs afero.Fs, dir string) []string {
	infos, err := afero.ReadDir(fs, dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, fi := range infos {
		if fi.Mode().IsRegular() {
			names = append(names, fi.Name())
		}
	}
	return names
}

// dirBytes sums the sizes of dir's files that keep(name) selects, and
// returns the largest one too.
func dirBytes(fs afero.Fs, dir string, keep func(string) bool) (total, largest int64) {
	infos, err := afero.ReadDir(fs, dir)
	if err != nil {
		return 0, 0
	}
	for _, fi := range infos {
		if fi.Mode().IsRegular() && keep(fi.Name()) {
			total += fi.Size()
			largest = max(largest, fi.Size())
		}
	}
	return total, largest
}

// usedBytes is what every file on fs takes, for the quota.
func usedBytes(fs *fsadapter.CrashFS) int64 {
	var n int64
	for _, name := range fs.Files() {
		if fi, err := fs.Stat(name); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// quotaFS refuses writes past a byte quota with ENOSPC, writing what fits
// first, as a full filesystem does. Quota 0 means none. It sits between
// the FaultFS (which counts operations) and the CrashFS.
type quotaFS struct {
	afero.Fs
	crash *fsadapter.CrashFS
	quota int64
}

func (q *quotaFS) Create(name string) (afero.File, error) {
	f, err := q.Fs.Create(name)
	return q.wrap(f, err)
}

func (q *quotaFS) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := q.Fs.OpenFile(name, flag, perm)
	return q.wrap(f, err)
}

func (q *quotaFS) wrap(f afero.File, err error) (afero.File, error) {
	if err != nil {
		return nil, err
	}
	return &quotaFile{File: f, q: q}, nil
}

// room returns how many more bytes fit under the quota.
func (q *quotaFS) room() int64 {
	if q.quota <= 0 {
		return 1 << 40
	}
	return max(q.quota-usedBytes(q.crash), 0)
}

type quotaFile struct {
	afero.File
	q *quotaFS
}

func (f *quotaFile) Write(p []byte) (int, error) {
	return f.limit(p, f.File.Write)
}

func (f *quotaFile) WriteAt(p []byte, off int64) (int, error) {
	return f.limit(p, func(b []byte) (int, error) { return f.File.WriteAt(b, off) })
}

func (f *quotaFile) WriteString(s string) (int, error) { return f.Write([]byte(s)) }

func (f *quotaFile) limit(p []byte, write func([]byte) (int, error)) (int, error) {
	if f.q.quota <= 0 {
		return write(p)
	}
	room := f.q.room()
	if int64(len(p)) <= room {
		return write(p)
	}
	n, err := write(p[:room])
	if err == nil {
		err = &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

// rewriteSynced replaces a file's bytes on the CrashFS and fsyncs them, so
// that injected damage is stored damage: it survives a power loss.
func rewriteSynced(fs *fsadapter.CrashFS, name string, data []byte) bool {
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		return false
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err == nil
}

// lostFrames returns the records well-formed in before and not in after.
func lostFrames(before, after []byte) []diskRecord {
	kept := parseFrames(after)
	var lost []diskRecord
	for _, r := range parseFrames(before) {
		if !slices.ContainsFunc(kept, func(k diskRecord) bool { return k.seq == r.seq && bytes.Equal(k.data, r.data) }) {
			lost = append(lost, r)
		}
	}
	return lost
}

var _ io.Writer = (*quotaFile)(nil)

func readAll(fs *fsadapter.CrashFS, name string) ([]byte, error) { return afero.ReadFile(fs, name) }

func hasSuffix(s, suffix string) bool { return strings.HasSuffix(s, suffix) }

func contains(s, part string) bool { return strings.Contains(s, part) }
