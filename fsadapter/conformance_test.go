package fsadapter

import (
	"cmp"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// conformanceTargets are the filesystems core may be given. Each must pass
// every conformance case, so a test on CrashFS says something about disk.
var conformanceTargets = []struct {
	name string
	make func(t *testing.T) afero.Fs
}{
	{"OS", func(t *testing.T) afero.Fs { return NewOS(t.TempDir()) }},
	{"CrashFS", func(*testing.T) afero.Fs { return NewCrashFS(1) }},
	{"FaultFS(CrashFS)", func(*testing.T) afero.Fs { return NewFaultFS(NewCrashFS(1)) }},
	{"FaultFS(OS)", func(t *testing.T) afero.Fs { return NewFaultFS(NewOS(t.TempDir())) }},
}

var conformanceCases = []struct {
	name string
	run  func(t *testing.T, fsys afero.Fs)
}{
	{"CreateInMissingDirIsNotExist", testCreateInMissingDir},
	{"RenameIntoMissingDirIsNotExist", testRenameIntoMissingDir},
	{"OpenAndStatMissingIsNotExist", testOpenMissing},
	{"PathThroughFileFails", testPathThroughFile},
	{"SyncDirHandle", testSyncDirHandle},
	{"RenameReplacesFile", testRenameReplacesFile},
	{"RenameOntoDirFails", testRenameOntoDir},
	{"RenameDir", testRenameDir},
	{"ExclusiveCreate", testExclusiveCreate},
	{"AppendWritesAtEnd", testAppend},
	{"TruncFlagEmptiesFile", testTruncFlag},
	{"TruncateShrinksAndZeroExtends", testTruncate},
	{"ReadAfterWrite", testReadAfterWrite},
	{"ReaddirListsEntries", testReaddir},
	{"ReaddirPages", testReaddirPages},
	{"RemoveSemantics", testRemove},
	{"MkdirSemantics", testMkdir},
	{"StatReportsSizeAndKind", testStat},
	{"ReadingDirHandleFails", testReadDirHandle},
	{"WriteToReadOnlyHandleFails", testWriteReadOnly},
	{"UseAfterCloseFails", testUseAfterClose},
	{"RemovedFileHandleKeepsWorking", testRemovedFileHandle},
	{"ChtimesSetsModTime", testChtimes},
}

func TestConformance(t *testing.T) {
	for _, target := range conformanceTargets {
		t.Run(target.name, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) { c.run(t, target.make(t)) })
			}
		})
	}
}

func testCreateInMissingDir(t *testing.T, fsys afero.Fs) {
	_, err := fsys.Create("/missing/f")
	wantNotExist(t, err, "Create in missing dir")
	_, err = fsys.OpenFile("/missing/f", os.O_CREATE|os.O_WRONLY, 0o644)
	wantNotExist(t, err, "OpenFile(O_CREATE) in missing dir")
}

func testRenameIntoMissingDir(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/a", "a", false)
	wantNotExist(t, fsys.Rename("/a", "/missing/b"), "Rename into missing dir")
	wantNotExist(t, fsys.Rename("/nope", "/b"), "Rename of missing file")
	if got := readFile(t, fsys, "/a"); got != "a" {
		t.Fatalf("after failed rename /a = %q", got)
	}
}

func testOpenMissing(t *testing.T, fsys afero.Fs) {
	_, err := fsys.Open("/nope")
	wantNotExist(t, err, "Open")
	_, err = fsys.Stat("/nope")
	wantNotExist(t, err, "Stat")
}

func testPathThroughFile(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/f", "x", false)
	if _, err := fsys.Create("/f/x"); err == nil {
		t.Fatal("Create below a file succeeded")
	}
	if _, err := fsys.Stat("/f/x"); err == nil {
		t.Fatal("Stat below a file succeeded")
	}
	if err := fsys.Mkdir("/f/d", 0o755); err == nil {
		t.Fatal("Mkdir below a file succeeded")
	}
}

func testSyncDirHandle(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	writeFile(t, fsys, "/d/f", "x", true)
	syncDir(t, fsys, "/d")
	syncDir(t, fsys, "/")
}

func testRenameReplacesFile(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/a", "new", false)
	writeFile(t, fsys, "/b", "old", false)
	if err := fsys.Rename("/a", "/b"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, fsys, "/b"); got != "new" {
		t.Fatalf("/b = %q, want new", got)
	}
	_, err := fsys.Stat("/a")
	wantNotExist(t, err, "Stat of renamed-away /a")
}

func testRenameOntoDir(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	writeFile(t, fsys, "/f", "x", false)
	if err := fsys.Rename("/f", "/d"); err == nil {
		t.Fatal("rename of a file onto a directory succeeded")
	}
	if !exists(fsys, "/f") {
		t.Fatal("failed rename lost /f")
	}
}

func testRenameDir(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	writeFile(t, fsys, "/d/f", "x", false)
	if err := fsys.Rename("/d", "/e"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, fsys, "/e/f"); got != "x" {
		t.Fatalf("/e/f = %q", got)
	}
	if exists(fsys, "/d") {
		t.Fatal("/d still exists")
	}
}

func testExclusiveCreate(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/f", "x", false)
	_, err := fsys.OpenFile("/f", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if !errors.Is(err, fs.ErrExist) || !os.IsExist(err) {
		t.Fatalf("O_EXCL on existing file: %v, want exist error", err)
	}
	f, err := fsys.OpenFile("/g", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func testAppend(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/f", "abc", false)
	f, err := fsys.OpenFile("/f", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("de")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := readFile(t, fsys, "/f"); got != "abcde" {
		t.Fatalf("got %q, want abcde: O_APPEND must ignore the offset", got)
	}
}

func testTruncFlag(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/f", "abc", false)
	f, err := fsys.OpenFile("/f", os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := readFile(t, fsys, "/f"); got != "" {
		t.Fatalf("got %q after O_TRUNC", got)
	}
}

func testTruncate(t *testing.T, fsys afero.Fs) {
	f, err := fsys.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("abcdef")
	if err := f.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, fsys, "/f"); got != "abc\x00\x00" {
		t.Fatalf("got %q, want abc and two zero bytes", got)
	}
}

func testReadAfterWrite(t *testing.T, fsys afero.Fs) {
	f, err := fsys.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("hello world")
	if _, err := f.WriteAt([]byte("W"), 6); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d, %v; want 0, io.EOF", n, err)
	}
	b := make([]byte, 5)
	if n, err := f.ReadAt(b, 6); n != 5 || err != nil || string(b) != "World" {
		t.Fatalf("ReadAt(6) = %d %q %v", n, b, err)
	}
	if n, err := f.ReadAt(b, 8); n != 3 || err != io.EOF {
		t.Fatalf("ReadAt past end = %d, %v; want 3, io.EOF", n, err)
	}
	if pos, err := f.Seek(0, io.SeekStart); pos != 0 || err != nil {
		t.Fatalf("seek: %d %v", pos, err)
	}
	if all, err := io.ReadAll(f); string(all) != "hello World" || err != nil {
		t.Fatalf("ReadAll = %q, %v", all, err)
	}
}

func testReaddir(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	writeFile(t, fsys, "/d/b", "bb", false)
	writeFile(t, fsys, "/d/a", "a", false)
	mkdir(t, fsys, "/d/c")
	d, err := fsys.Open("/d")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	infos, err := d.Readdir(-1)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(infos, func(x, y os.FileInfo) int { return cmp.Compare(x.Name(), y.Name()) })
	var got []string
	for _, fi := range infos {
		got = append(got, fi.Name())
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) || infos[1].Size() != 2 || !infos[2].IsDir() {
		t.Fatalf("Readdir = %v (size of b %d, c dir %v)", got, infos[1].Size(), infos[2].IsDir())
	}
	d2, _ := fsys.Open("/d")
	defer d2.Close()
	names, err := d2.Readdirnames(-1)
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("Readdirnames = %v, %v", names, err)
	}
}

func testReaddirPages(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	for _, name := range []string{"/d/1", "/d/2", "/d/3"} {
		writeFile(t, fsys, name, "", false)
	}
	d, err := fsys.Open("/d")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var seen []string
	for range 2 {
		names, err := d.Readdirnames(2)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, names...)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"1", "2", "3"}) {
		t.Fatalf("pages held %v", seen)
	}
	if names, err := d.Readdirnames(2); len(names) != 0 || err != io.EOF {
		t.Fatalf("after the last page: %v, %v; want io.EOF", names, err)
	}
}

func testRemove(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	writeFile(t, fsys, "/d/f", "x", false)
	if err := fsys.Remove("/d"); err == nil {
		t.Fatal("Remove of a non-empty directory succeeded")
	}
	if !exists(fsys, "/d/f") {
		t.Fatal("failed Remove lost /d/f")
	}
	wantNotExist(t, fsys.Remove("/nope"), "Remove of missing file")
	if err := fsys.RemoveAll("/nope"); err != nil {
		t.Fatalf("RemoveAll of missing path: %v", err)
	}
	if err := fsys.RemoveAll("/d"); err != nil {
		t.Fatal(err)
	}
	if exists(fsys, "/d") || exists(fsys, "/d/f") {
		t.Fatal("RemoveAll left something")
	}
}

func testMkdir(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	if err := fsys.Mkdir("/d", 0o755); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Mkdir of existing dir: %v, want exist error", err)
	}
	wantNotExist(t, fsys.Mkdir("/missing/d", 0o755), "Mkdir in missing parent")
	if err := fsys.MkdirAll("/d", 0o755); err != nil {
		t.Fatalf("MkdirAll of existing dir: %v", err)
	}
	if err := fsys.MkdirAll("/a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := fsys.Stat("/a/b/c"); err != nil || !fi.IsDir() {
		t.Fatalf("after MkdirAll: %v", err)
	}
	writeFile(t, fsys, "/f", "", false)
	if err := fsys.MkdirAll("/f/g", 0o755); err == nil {
		t.Fatal("MkdirAll through a file succeeded")
	}
}

func testStat(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	f, err := fsys.Create("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("12345")
	fi, err := f.Stat()
	if err != nil || fi.Size() != 5 || fi.IsDir() || fi.Name() != "f" {
		t.Fatalf("handle Stat = %v, %v", fi, err)
	}
	fi, err = fsys.Stat("/d/f")
	if err != nil || fi.Size() != 5 || !fi.Mode().IsRegular() {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	if fi, err := fsys.Stat("/d"); err != nil || !fi.IsDir() || fi.Name() != "d" {
		t.Fatalf("Stat of dir = %v, %v", fi, err)
	}
}

func testReadDirHandle(t *testing.T, fsys afero.Fs) {
	mkdir(t, fsys, "/d")
	d, err := fsys.Open("/d")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Read(make([]byte, 8)); err == nil || err == io.EOF {
		t.Fatalf("Read of a directory handle: %v, want a real error", err)
	}
}

func testWriteReadOnly(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/f", "x", false)
	f, err := fsys.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("y")); err == nil {
		t.Fatal("Write on a read-only handle succeeded")
	}
}

func testUseAfterClose(t *testing.T, fsys afero.Fs) {
	f, err := fsys.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close: %v, want os.ErrClosed", err)
	}
	if err := f.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want os.ErrClosed", err)
	}
}

func testRemovedFileHandle(t *testing.T, fsys afero.Fs) {
	f, err := fsys.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fsys.Remove("/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("still here"); err != nil {
		t.Fatalf("write after unlink: %v", err)
	}
	b := make([]byte, 10)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "still here" {
		t.Fatalf("read after unlink: %q, %v", b, err)
	}
	if exists(fsys, "/f") {
		t.Fatal("/f still has a name")
	}
}

func testChtimes(t *testing.T, fsys afero.Fs) {
	writeFile(t, fsys, "/f", "x", false)
	when := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	if err := fsys.Chtimes("/f", when, when); err != nil {
		t.Fatal(err)
	}
	fi, err := fsys.Stat("/f")
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(when) {
		t.Fatalf("ModTime = %v, want %v", fi.ModTime(), when)
	}
	wantNotExist(t, fsys.Chtimes("/nope", when, when), "Chtimes of missing file")
}
