package fsadapter

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Operations below are numbered in comments as FaultFS counts them.

func TestFaultFailsNthOp(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	f.AddRule(Rule{At: 3})
	h, err := f.Create("/f") // 1
	if err != nil {
		t.Fatal(err)
	}
	h.WriteString("a")          // 2
	_, err = h.WriteString("b") // 3
	var pe *os.PathError
	if !errors.Is(err, syscall.EIO) || !errors.As(err, &pe) || pe.Op != "write" {
		t.Fatalf("op 3: %v, want *os.PathError wrapping EIO", err)
	}
	if _, err := h.WriteString("c"); err != nil { // 4
		t.Fatalf("op 4: %v", err)
	}
	h.Close() // 5
	if got := readFile(t, f, "/f"); got != "ac" {
		t.Fatalf("/f = %q, want ac: the failed write must write nothing", got)
	}
}

func TestFaultFailsKind(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	f.AddRule(Rule{Kind: OpSync, Err: syscall.ENOSPC})
	h, _ := f.Create("/f")
	defer h.Close()
	for range 3 {
		if _, err := h.WriteString("x"); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := h.Sync(); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("sync: %v, want ENOSPC", err)
		}
	}
	d, _ := f.Open("/")
	if err := d.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("directory sync: %v, want ENOSPC", err)
	}
}

// Path rules match by substring, so ".tmp" picks every temp file.
func TestFaultFailsPath(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	mkdir(t, f, "/spool")
	f.AddRule(Rule{Path: ".tmp"})
	if _, err := f.Create("/spool/1.tmp"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("create temp: %v, want EIO", err)
	}
	writeFile(t, f, "/spool/1", "x", false)
	err := f.Rename("/spool/1", "/spool/2.tmp")
	var le *os.LinkError
	if !errors.Is(err, syscall.EIO) || !errors.As(err, &le) {
		t.Fatalf("rename to temp: %v, want *os.LinkError wrapping EIO", err)
	}
	if !exists(f, "/spool/1") {
		t.Fatal("the failed rename moved the file")
	}
}

// A rule with From kills the process at that op: it and every later op
// fail, whatever their kind.
func TestFaultFailsFromOnward(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	f.AddRule(Rule{From: 3})
	h, _ := f.Create("/f") // 1
	h.WriteString("ok")    // 2
	errs := []error{
		second(h.WriteString("lost")), // 3
		h.Sync(),                      // 4
		h.Close(),                     // 5
		f.Mkdir("/d", 0o755),          // 6
		second(f.Stat("/f")),          // 7
	}
	for i, err := range errs {
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("op %d: %v, want EIO", i+3, err)
		}
	}
	f.ClearRules()
	if got := readFile(t, f, "/f"); got != "ok" {
		t.Fatalf("/f = %q", got)
	}
}

func TestFaultTimesLimitsFiring(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	f.AddRule(Rule{Kind: OpWrite, Times: 2, Err: syscall.ENOSPC})
	h, _ := f.Create("/f")
	defer h.Close()
	var failed int
	for range 5 {
		if _, err := h.WriteString("x"); err != nil {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d writes failed, want 2", failed)
	}
}

func TestFaultShortWrite(t *testing.T) {
	for _, errWant := range []error{syscall.ENOSPC, io.ErrShortWrite} {
		t.Run(fmt.Sprint(errWant), func(t *testing.T) {
			f := NewFaultFS(NewCrashFS(1))
			h, _ := f.Create("/f")
			f.AddRule(Rule{Kind: OpWrite, ShortWrite: 3, Err: errWant, Times: 1})
			n, err := h.Write([]byte("abcdef"))
			if n != 3 || !errors.Is(err, errWant) {
				t.Fatalf("Write = %d, %v; want 3, %v", n, err, errWant)
			}
			f.AddRule(Rule{Kind: OpWrite, ShortWrite: 99, Err: errWant, Times: 1})
			if n, err := h.Write([]byte("gh")); n != 1 || err == nil {
				t.Fatalf("Write = %d, %v; want 1 byte, capped so the write stays short", n, err)
			}
			h.Close()
			if got := readFile(t, f, "/f"); got != "abcg" {
				t.Fatalf("/f = %q, want abcg", got)
			}
		})
	}
}

// A full disk must be recognisable through any wrapping.
func TestFaultENOSPCIsDetectable(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	f.AddRule(Rule{Kind: OpWrite, Err: syscall.ENOSPC})
	h, _ := f.Create("/f")
	_, err := h.Write([]byte("x"))
	wrapped := fmt.Errorf("spill segment 7: %w", err)
	if !errors.Is(wrapped, syscall.ENOSPC) {
		t.Fatalf("%v does not match ENOSPC", wrapped)
	}
	if errors.Is(wrapped, syscall.EIO) {
		t.Fatal("ENOSPC also matches EIO")
	}
}

type observed struct {
	index int
	kind  OpKind
	path  string
}

// Every call counts, on the filesystem and on its handles, and OnOp sees
// each one, including those that fail.
func TestFaultCountsEveryOp(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	var got []observed
	f.OnOp = func(index int, kind OpKind, path string) {
		got = append(got, observed{index, kind, path})
	}
	f.AddRule(Rule{Kind: OpChmod})
	f.Mkdir("/d", 0o755)
	h, _ := f.Create("/d/f")
	h.WriteString("abc")
	h.WriteAt([]byte("x"), 0)
	h.Seek(0, io.SeekStart)
	h.Read(make([]byte, 2))
	h.ReadAt(make([]byte, 2), 1)
	h.Truncate(1)
	h.Stat()
	h.Sync()
	h.Close()
	d, _ := f.Open("/d")
	d.Readdir(-1)
	d.Readdirnames(-1)
	d.Sync()
	d.Close()
	f.Stat("/d/f")
	f.Rename("/d/f", "/d/g")
	f.Chtimes("/d/g", time.Time{}, time.Time{})
	f.RemoveAll("/d")
	want := []observed{
		{1, OpMkdir, "/d"}, {2, OpOpen, "/d/f"}, {3, OpWrite, "/d/f"},
		{4, OpWrite, "/d/f"}, {5, OpSeek, "/d/f"}, {6, OpRead, "/d/f"},
		{7, OpRead, "/d/f"}, {8, OpTruncate, "/d/f"}, {9, OpStat, "/d/f"},
		{10, OpSync, "/d/f"}, {11, OpClose, "/d/f"}, {12, OpOpen, "/d"},
		{13, OpReaddir, "/d"}, {14, OpReaddir, "/d"}, {15, OpSync, "/d"},
		{16, OpClose, "/d"}, {17, OpStat, "/d/f"}, {18, OpRename, "/d/f -> /d/g"},
		{19, OpChmod, "/d/g"}, {20, OpRemove, "/d"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("observed\n%v\nwant\n%v", got, want)
	}
	if f.Ops() != len(want) {
		t.Fatalf("Ops() = %d, want %d", f.Ops(), len(want))
	}
}

// A failed operation leaves the inner filesystem as it was: after a failed
// fsync the appended bytes are still only pending.
func TestFaultFailedSyncSyncsNothing(t *testing.T) {
	c := NewCrashFS(1)
	f := NewFaultFS(c)
	writeFile(t, f, "/f", "", true)
	syncDir(t, f, "/")
	f.AddRule(Rule{Kind: OpSync})
	h, _ := f.OpenFile("/f", osAppendWrite, 0)
	h.WriteString("pending")
	if err := h.Sync(); err == nil {
		t.Fatal("sync did not fail")
	}
	if got, want := c.Dump(), "/f 7 bytes, 0 bytes synced\n"; got != want {
		t.Fatalf("Dump() = %q, want %q", got, want)
	}
}

// Close releases the inner handle even when it reports a failure, as the
// kernel frees a descriptor whatever close returns.
func TestFaultFailedCloseStillCloses(t *testing.T) {
	f := NewFaultFS(NewCrashFS(1))
	h, _ := f.Create("/f")
	f.AddRule(Rule{Kind: OpClose})
	if err := h.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close: %v, want EIO", err)
	}
	inner := h.(*faultFile).inner
	if _, err := inner.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("inner handle after failed Close: %v, want os.ErrClosed", err)
	}
}

func TestFaultRejectsNegativeRule(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AddRule accepted At: -1")
		}
	}()
	NewFaultFS(NewCrashFS(1)).AddRule(Rule{At: -1})
}

func TestOpKindString(t *testing.T) {
	if OpRename.String() != "rename" || OpAny.String() != "any" || OpKind(99).String() != "OpKind(99)" {
		t.Fatal(OpRename, OpAny, OpKind(99))
	}
}
