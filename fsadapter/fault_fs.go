package fsadapter

import (
	"os"
	"time"

	"github.com/spf13/afero"
)

// Name identifies the filesystem in logs.
func (f *FaultFS) Name() string { return "FaultFS" }

// Create counts as an open.
func (f *FaultFS) Create(name string) (afero.File, error) {
	if r, ok := f.op(OpOpen, name); ok {
		return nil, fail(r, "open", name)
	}
	file, err := f.inner.Create(name)
	return f.wrap(file, name, err)
}

// Open counts as an open.
func (f *FaultFS) Open(name string) (afero.File, error) {
	if r, ok := f.op(OpOpen, name); ok {
		return nil, fail(r, "open", name)
	}
	file, err := f.inner.Open(name)
	return f.wrap(file, name, err)
}

// OpenFile counts as an open.
func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if r, ok := f.op(OpOpen, name); ok {
		return nil, fail(r, "open", name)
	}
	file, err := f.inner.OpenFile(name, flag, perm)
	return f.wrap(file, name, err)
}

// wrap puts an inner handle behind a faultFile so its calls are counted
// too. It returns a nil interface, not a typed nil, on error.
func (f *FaultFS) wrap(inner afero.File, name string, err error) (afero.File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{fs: f, inner: inner, name: name}, nil
}

// Mkdir counts as a mkdir.
func (f *FaultFS) Mkdir(name string, perm os.FileMode) error {
	if r, ok := f.op(OpMkdir, name); ok {
		return fail(r, "mkdir", name)
	}
	return f.inner.Mkdir(name, perm)
}

// MkdirAll counts as one mkdir.
func (f *FaultFS) MkdirAll(name string, perm os.FileMode) error {
	if r, ok := f.op(OpMkdir, name); ok {
		return fail(r, "mkdir", name)
	}
	return f.inner.MkdirAll(name, perm)
}

// Remove counts as a remove.
func (f *FaultFS) Remove(name string) error {
	if r, ok := f.op(OpRemove, name); ok {
		return fail(r, "remove", name)
	}
	return f.inner.Remove(name)
}

// RemoveAll counts as one remove.
func (f *FaultFS) RemoveAll(name string) error {
	if r, ok := f.op(OpRemove, name); ok {
		return fail(r, "removeall", name)
	}
	return f.inner.RemoveAll(name)
}

// Rename counts as a rename; a rule's Path may match either name.
func (f *FaultFS) Rename(oldname, newname string) error {
	if r, ok := f.op(OpRename, oldname, newname); ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: r.err()}
	}
	return f.inner.Rename(oldname, newname)
}

// Stat counts as a stat.
func (f *FaultFS) Stat(name string) (os.FileInfo, error) {
	if r, ok := f.op(OpStat, name); ok {
		return nil, fail(r, "stat", name)
	}
	return f.inner.Stat(name)
}

// Chmod counts as a chmod.
func (f *FaultFS) Chmod(name string, mode os.FileMode) error {
	if r, ok := f.op(OpChmod, name); ok {
		return fail(r, "chmod", name)
	}
	return f.inner.Chmod(name, mode)
}

// Chown counts as a chmod.
func (f *FaultFS) Chown(name string, uid, gid int) error {
	if r, ok := f.op(OpChmod, name); ok {
		return fail(r, "chown", name)
	}
	return f.inner.Chown(name, uid, gid)
}

// Chtimes counts as a chmod.
func (f *FaultFS) Chtimes(name string, atime, mtime time.Time) error {
	if r, ok := f.op(OpChmod, name); ok {
		return fail(r, "chtimes", name)
	}
	return f.inner.Chtimes(name, atime, mtime)
}
