package fsadapter

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
)

// errWriteAtInAppendMode matches the os package's refusal: with O_APPEND
// the kernel ignores the offset, so WriteAt would lie.
var errWriteAtInAppendMode = errors.New("invalid use of WriteAt on file opened with O_APPEND")

// crashFile is an open handle on a CrashFS inode. Like a descriptor it
// follows the inode, not the name: it keeps working after the name is
// removed or renamed, until Close or a Crash.
type crashFile struct {
	fs     *CrashFS
	node   *inode
	name   string
	flag   int
	epoch  int
	offset int64
	closed bool

	listing []string // directory: names sorted at the first Readdir; nil before
	listPos int
}

func writable(flag int) bool { return flag&(os.O_WRONLY|os.O_RDWR) != 0 }
func readable(flag int) bool { return flag&os.O_WRONLY == 0 }

// usable checks, with the filesystem locked, that the handle survived any
// crash and is still open.
func (f *crashFile) usable(op string) error {
	switch {
	case f.epoch != f.fs.epoch:
		return pathErr(op, f.name, ErrCrashed)
	case f.closed:
		return pathErr(op, f.name, os.ErrClosed)
	}
	return nil
}

// Name returns the name the handle was opened with, as os.File does.
func (f *crashFile) Name() string { return f.name }

// Close releases the handle; further use fails with os.ErrClosed.
func (f *crashFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}

// Read reads from the handle's offset. Reading a directory fails (EISDIR),
// as it does on Linux.
func (f *crashFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("read"); err != nil {
		return 0, err
	}
	if err := f.checkRead("read"); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.node.readAt(p, f.offset)
	f.offset += int64(n)
	return n, err
}

// ReadAt reads at off without moving the offset; a short read ends in
// io.EOF, as io.ReaderAt requires.
func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("read"); err != nil {
		return 0, err
	}
	if err := f.checkRead("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, syscall.EINVAL)
	}
	return f.node.readAt(p, off)
}

func (f *crashFile) checkRead(op string) error {
	switch {
	case f.node.isDir:
		return pathErr(op, f.name, syscall.EISDIR)
	case !readable(f.flag):
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

func (n *inode) readAt(p []byte, off int64) (int, error) {
	if off >= int64(len(n.data)) {
		return 0, io.EOF
	}
	k := copy(p, n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// Write writes at the handle's offset, or at the end with O_APPEND.
func (f *crashFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("write"); err != nil {
		return 0, err
	}
	if !writable(f.flag) {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if f.flag&os.O_APPEND != 0 {
		f.offset = int64(len(f.node.data))
	}
	f.node.writeAt(p, f.offset)
	f.offset += int64(len(p))
	return len(p), nil
}

// WriteAt writes at off without moving the offset.
func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("write"); err != nil {
		return 0, err
	}
	switch {
	case !writable(f.flag):
		return 0, pathErr("write", f.name, syscall.EBADF)
	case f.flag&os.O_APPEND != 0:
		return 0, pathErr("writeat", f.name, errWriteAtInAppendMode)
	case off < 0:
		return 0, pathErr("writeat", f.name, syscall.EINVAL)
	}
	f.node.writeAt(p, off)
	return len(p), nil
}

// WriteString writes s like Write.
func (f *crashFile) WriteString(s string) (int, error) {
	return f.Write([]byte(s))
}

// Seek moves the offset. On a directory it also restarts the listing, as
// os.File does.
func (f *crashFile) Seek(offset int64, whence int) (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("seek"); err != nil {
		return 0, err
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.offset
	case io.SeekEnd:
		base = int64(len(f.node.data))
	default:
		return 0, pathErr("seek", f.name, syscall.EINVAL)
	}
	if base+offset < 0 {
		return 0, pathErr("seek", f.name, syscall.EINVAL)
	}
	f.offset = base + offset
	f.listing, f.listPos = nil, 0
	return f.offset, nil
}

// Sync makes the handle's inode durable: a file's current bytes, or a
// directory's current entries (creations, renames in and out, removals).
// It does not sync the files a directory names, nor a file's entry in its
// directory: those need their own fsync, as on a real disk.
func (f *crashFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("sync"); err != nil {
		return err
	}
	n := f.node
	if n.isDir {
		n.syncedEntries = make(map[string]*inode, len(n.entries))
		for name, child := range n.entries {
			n.syncedEntries[name] = child
		}
		return nil
	}
	n.syncedData = bytes.Clone(n.data)
	return nil
}

// Truncate resizes the file. Like ftruncate on Linux it needs a writable
// handle (EINVAL otherwise).
func (f *crashFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("truncate"); err != nil {
		return err
	}
	switch {
	case f.node.isDir:
		return pathErr("truncate", f.name, syscall.EISDIR)
	case !writable(f.flag) || size < 0:
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	f.node.resize(size)
	return nil
}

// Stat describes the inode, even after its name was removed.
func (f *crashFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("stat"); err != nil {
		return nil, err
	}
	return f.node.info(baseName(f.name)), nil
}
