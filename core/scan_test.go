package core

import (
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func TestScanDescribesTheSpool(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 20, 100, 0) // segments 1-8, 9-10, 11-18, 19-20
	flip(t, fs, "/spool/"+segName(11), 56+3*120+40)
	_ = afero.WriteFile(fs, "/spool/"+segName(99)+tmpSuffix, []byte("partial"), 0o600)
	var progress int
	rep, err := Scan(fs, "/spool", ScanOptions{Verify: true, Progress: func(done, total int) { progress = done }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Segments) != 4 || rep.Records != 19 || rep.FirstSeq != 1 || rep.LastSeq != 20 || rep.TempFiles != 1 || progress != 4 {
		t.Fatalf("report %+v", rep)
	}
	bad := rep.Segments[2]
	if bad.BadRecords != 1 || len(bad.Damage) != 1 || bad.Damage[0].Offset != 56+3*120 {
		t.Fatalf("damaged segment %+v", bad)
	}
	if rep.AgentID != h.rep.AgentID || rep.Damaged != 1 {
		t.Fatalf("agent %q damaged %d", rep.AgentID, rep.Damaged)
	}
}

// vanishingFs makes files disappear between the listing and the read, as a
// running daemon's acknowledgements do.
type vanishingFs struct {
	afero.Fs
	gone string
}

func (v vanishingFs) Open(name string) (afero.File, error) {
	if strings.HasSuffix(name, v.gone) {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return v.Fs.Open(name)
}

func (v vanishingFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if strings.HasSuffix(name, v.gone) {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return v.Fs.OpenFile(name, flag, perm)
}

func TestScanToleratesVanishingFilesAndNeverWrites(t *testing.T) {
	mem := afero.NewMemMapFs()
	h := newHarness(t, mem, testConfig())
	h.add(0, 10, 100, 0)
	before := snapshot(t, mem)
	rep, err := Scan(vanishingFs{Fs: mem, gone: segName(1)}, "/spool", ScanOptions{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Vanished != 1 || rep.Records != 2 {
		t.Fatalf("report %+v", rep)
	}
	if after := snapshot(t, mem); after != before {
		t.Fatalf("Scan changed the spool:\n%s\n---\n%s", before, after)
	}
}

// snapshot lists every file with its size and content hash.
func snapshot(t *testing.T, fsys afero.Fs) string {
	t.Helper()
	var b strings.Builder
	_ = afero.Walk(fsys, "/", func(p string, fi fs.FileInfo, err error) error {
		if err == nil {
			data, _ := afero.ReadFile(fsys, p)
			if fi.IsDir() {
				data = nil
			}
			b.WriteString(p + " " + string(rune(len(data))) + " " + string(data) + "\n")
		}
		return nil
	})
	return b.String()
}
