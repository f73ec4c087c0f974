package fsadapter

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/spf13/afero"
)

// writeFile creates name holding data, fsyncing it first when sync is set,
// and closes it: one step of the spool's write protocol.
func writeFile(t *testing.T, fsys afero.Fs, name, data string, sync bool) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatalf("sync %s: %v", name, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// syncDir fsyncs a directory the one way every afero filesystem supports.
func syncDir(t *testing.T, fsys afero.Fs, dir string) {
	t.Helper()
	d, err := fsys.Open(dir)
	if err != nil {
		t.Fatalf("open dir %s: %v", dir, err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("sync dir %s: %v", dir, err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("close dir %s: %v", dir, err)
	}
}

func readFile(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func mkdir(t *testing.T, fsys afero.Fs, name string) {
	t.Helper()
	if err := fsys.Mkdir(name, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", name, err)
	}
}

// wantNotExist checks err the two ways callers test for a missing file.
func wantNotExist(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) || !os.IsNotExist(err) {
		t.Fatalf("%s: got %v, want a not-exist error", what, err)
	}
}

func exists(fsys afero.Fs, name string) bool {
	_, err := fsys.Stat(name)
	return err == nil
}

const (
	osAppendWrite = os.O_WRONLY | os.O_APPEND
	osReadWrite   = os.O_RDWR
)
