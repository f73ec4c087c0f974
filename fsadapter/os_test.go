package fsadapter

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

// Directory fsync must reach the kernel, not stop in a wrapper that answers
// nil: the handle must be an *os.File, Sync on it must succeed, and once
// closed it must fail with os.ErrClosed, which only the os package reports.
func TestOSDirSyncReachesOS(t *testing.T) {
	fsys := NewOS(t.TempDir())
	mkdir(t, fsys, "/spool")
	d, err := fsys.Open("/spool")
	if err != nil {
		t.Fatal(err)
	}
	base, ok := d.(*afero.BasePathFile)
	if !ok {
		t.Fatalf("Open returned %T, want *afero.BasePathFile", d)
	}
	if _, ok := base.File.(*os.File); !ok {
		t.Fatalf("the directory handle wraps %T, want *os.File", base.File)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of a directory: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want os.ErrClosed from the os package", err)
	}
}

func TestOSIsRootedAt(t *testing.T) {
	root := t.TempDir()
	fsys := NewOS(root)
	writeFile(t, fsys, "/a", "rooted", true)
	b, err := os.ReadFile(filepath.Join(root, "a"))
	if err != nil || string(b) != "rooted" {
		t.Fatalf("root/a = %q, %v", b, err)
	}
	writeFile(t, fsys, "b", "relative", false)
	if got := readFile(t, fsys, "/b"); got != "relative" {
		t.Fatalf("/b = %q: relative and absolute names must agree", got)
	}
}
