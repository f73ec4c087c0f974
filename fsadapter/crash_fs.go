package fsadapter

import (
	"errors"
	"os"
	"path"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// Errors follow the os package: *os.PathError wrapping a syscall.Errno, or
// *os.LinkError for Rename, so errors.Is(err, fs.ErrNotExist) and
// os.IsNotExist behave as they do on the real filesystem.

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// Name identifies the filesystem in logs.
func (c *CrashFS) Name() string { return "CrashFS" }

// Create creates or truncates name for reading and writing, as os.Create.
func (c *CrashFS) Create(name string) (afero.File, error) {
	return c.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens name read-only. Opening a directory gives the handle whose
// Sync makes the directory's entries durable.
func (c *CrashFS) Open(name string) (afero.File, error) {
	return c.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens name with os.O_* flags. The parent directory must exist:
// unlike MemMapFs, nothing is created implicitly.
func (c *CrashFS) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.openInode(name, flag, perm)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return &crashFile{fs: c, node: n, name: name, flag: flag, epoch: c.epoch}, nil
}

func (c *CrashFS) openInode(name string, flag int, perm os.FileMode) (*inode, error) {
	dir, base, err := c.lookupParent(name)
	if err != nil {
		return nil, err
	}
	n := dir
	if base != "" {
		n = dir.entries[base]
	}
	if n == nil {
		if flag&os.O_CREATE == 0 {
			return nil, syscall.ENOENT
		}
		n = c.newInode(false, perm)
		dir.entries[base] = n
		return n, nil
	}
	if flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0 {
		return nil, syscall.EEXIST
	}
	if n.isDir && (writable(flag) || flag&os.O_TRUNC != 0) {
		return nil, syscall.EISDIR
	}
	if flag&os.O_TRUNC != 0 && writable(flag) {
		n.data = nil
	}
	return n, nil
}

// Mkdir creates one directory; its parent must exist.
func (c *CrashFS) Mkdir(name string, perm os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir, base, err := c.lookupParent(name)
	switch {
	case err != nil:
	case base == "" || dir.entries[base] != nil:
		err = syscall.EEXIST
	default:
		dir.entries[base] = c.newInode(true, perm)
	}
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	return nil
}

// MkdirAll creates name and any missing parents; an existing directory is
// fine, an existing file on the way is ENOTDIR.
func (c *CrashFS) MkdirAll(name string, perm os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.root
	for _, part := range splitPath(name) {
		child := n.entries[part]
		if child == nil {
			child = c.newInode(true, perm)
			n.entries[part] = child
		}
		if !child.isDir {
			return pathErr("mkdir", name, syscall.ENOTDIR)
		}
		n = child
	}
	return nil
}

// Remove unlinks a file or an empty directory. Handles still open on it
// keep working, as on POSIX.
func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir, base, err := c.lookupParent(name)
	switch {
	case err != nil:
	case base == "":
		err = syscall.EBUSY
	case dir.entries[base] == nil:
		err = syscall.ENOENT
	case dir.entries[base].isDir && len(dir.entries[base].entries) > 0:
		err = syscall.ENOTEMPTY
	default:
		delete(dir.entries, base)
	}
	if err != nil {
		return pathErr("remove", name, err)
	}
	return nil
}

// RemoveAll removes name and everything below it; a missing name is fine.
// Each directory loses its entries in its own current state, as rm -r
// unlinks them one by one, so a power loss before the parent is fsynced
// brings back the synced part of the tree.
func (c *CrashFS) RemoveAll(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir, base, err := c.lookupParent(name)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err == nil && base == "" {
		err = syscall.EINVAL
	}
	if err != nil {
		return pathErr("removeall", name, err)
	}
	if n := dir.entries[base]; n != nil {
		n.unlinkAll()
		delete(dir.entries, base)
	}
	return nil
}

func (n *inode) unlinkAll() {
	for name, child := range n.entries {
		child.unlinkAll()
		delete(n.entries, name)
	}
}

// Rename moves oldname to newname, replacing a file at newname atomically.
// As os.Rename does on Unix, it refuses to replace a directory (EEXIST).
func (c *CrashFS) Rename(oldname, newname string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.rename(oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

func (c *CrashFS) rename(oldname, newname string) error {
	oldDir, oldBase, err := c.lookupParent(oldname)
	if err != nil {
		return err
	}
	n := oldDir.entries[oldBase]
	if oldBase == "" || n == nil {
		return syscall.ENOENT
	}
	newDir, newBase, err := c.lookupParent(newname)
	if err != nil {
		return err
	}
	target := newDir
	if newBase != "" {
		target = newDir.entries[newBase]
	}
	switch {
	case target == n:
		return nil
	case target != nil && target.isDir:
		return syscall.EEXIST
	case target != nil && n.isDir:
		return syscall.ENOTDIR
	case n.isDir && isBelow(splitPath(newname), splitPath(oldname)):
		return syscall.EINVAL
	}
	delete(oldDir.entries, oldBase)
	newDir.entries[newBase] = n
	return nil
}

// isBelow reports whether path p lies strictly inside directory dir, where
// a directory may not be moved.
func isBelow(p, dir []string) bool {
	return len(p) > len(dir) && slices.Equal(p[:len(dir)], dir)
}

// Stat describes name as it is now.
func (c *CrashFS) Stat(name string) (os.FileInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return n.info(baseName(name)), nil
}

// baseName is the name Stat reports: the last component, or "/" for the
// root.
func baseName(name string) string {
	return path.Base(path.Clean("/" + name))
}

// Chmod stores the permission bits; they are never enforced.
func (c *CrashFS) Chmod(name string, mode os.FileMode) error {
	return c.setAttr("chmod", name, func(n *inode) { n.perm = mode & os.ModePerm })
}

// Chown only checks that name exists: owners are not modelled.
func (c *CrashFS) Chown(name string, uid, gid int) error {
	return c.setAttr("chown", name, func(*inode) {})
}

// Chtimes sets the modification time; the access time is not modelled.
func (c *CrashFS) Chtimes(name string, atime, mtime time.Time) error {
	return c.setAttr("chtimes", name, func(n *inode) { n.mtime = mtime })
}

func (c *CrashFS) setAttr(op, name string, set func(*inode)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(name)
	if err != nil {
		return pathErr(op, name, err)
	}
	set(n)
	return nil
}
