package fsadapter

import (
	"io"
	"testing"

	"github.com/spf13/afero"
)

// TestMemMapFsIsLaxerThanDisk shows why CrashFS exists: afero's MemMapFs
// accepts operations the real filesystem refuses, so spool code tested on
// it could pass and then fail on disk, for example by writing a segment
// into a directory it forgot to create. Each check must fail on NewOS and
// CrashFS; it succeeds on MemMapFs.
func TestMemMapFsIsLaxerThanDisk(t *testing.T) {
	checks := []struct {
		name string
		op   func(fsys afero.Fs) error
	}{
		{"create in a missing directory", func(fsys afero.Fs) error {
			f, err := fsys.Create("/missing/seg")
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"rename into a missing directory", func(fsys afero.Fs) error {
			if err := afero.WriteFile(fsys, "/seg", []byte("x"), 0o644); err != nil {
				return err
			}
			return fsys.Rename("/seg", "/quarantine/seg")
		}},
		{"remove a non-empty directory", func(fsys afero.Fs) error {
			if err := fsys.Mkdir("/spool", 0o755); err != nil {
				return err
			}
			if err := afero.WriteFile(fsys, "/spool/seg", []byte("x"), 0o644); err != nil {
				return err
			}
			return fsys.Remove("/spool")
		}},
		{"mkdir below a file", func(fsys afero.Fs) error {
			if err := afero.WriteFile(fsys, "/seg", []byte("x"), 0o644); err != nil {
				return err
			}
			return fsys.Mkdir("/seg/sub", 0o755)
		}},
		{"read a directory handle", func(fsys afero.Fs) error {
			d, err := fsys.Open("/")
			if err != nil {
				return err
			}
			defer d.Close()
			if _, err = d.Read(make([]byte, 8)); err == io.EOF {
				return nil // an empty file, as far as the caller can tell
			}
			return err
		}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.op(afero.NewMemMapFs()); err != nil {
				t.Fatalf("MemMapFs refused (%v); it has become stricter, update this test", err)
			}
			if err := c.op(NewCrashFS(1)); err == nil {
				t.Error("CrashFS accepted it")
			}
			if err := c.op(NewOS(t.TempDir())); err == nil {
				t.Error("the real filesystem accepted it")
			}
		})
	}
}
