package fsadapter

import (
	"os"

	"github.com/spf13/afero"
)

// faultFile is a handle from a FaultFS: each call is one counted operation
// that the FaultFS's rules may fail.
type faultFile struct {
	fs    *FaultFS
	inner afero.File
	name  string
}

// Name is not an operation: it makes no system call.
func (h *faultFile) Name() string { return h.inner.Name() }

func (h *faultFile) Close() error {
	if r, ok := h.fs.op(OpClose, h.name); ok {
		_ = h.inner.Close() // the descriptor is gone even when close fails
		return fail(r, "close", h.name)
	}
	return h.inner.Close()
}

func (h *faultFile) Read(p []byte) (int, error) {
	if r, ok := h.fs.op(OpRead, h.name); ok {
		return 0, fail(r, "read", h.name)
	}
	return h.inner.Read(p)
}

func (h *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if r, ok := h.fs.op(OpRead, h.name); ok {
		return 0, fail(r, "read", h.name)
	}
	return h.inner.ReadAt(p, off)
}

func (h *faultFile) Write(p []byte) (int, error) {
	if r, ok := h.fs.op(OpWrite, h.name); ok {
		return h.failWrite(r, p, h.inner.Write)
	}
	return h.inner.Write(p)
}

func (h *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if r, ok := h.fs.op(OpWrite, h.name); ok {
		return h.failWrite(r, p, func(b []byte) (int, error) { return h.inner.WriteAt(b, off) })
	}
	return h.inner.WriteAt(p, off)
}

func (h *faultFile) WriteString(s string) (int, error) {
	return h.Write([]byte(s))
}

// failWrite lets the part of p the rule allows reach the inner file, then
// reports the rule's error, so n < len(p) whenever p is not empty.
func (h *faultFile) failWrite(r Rule, p []byte, write func([]byte) (int, error)) (int, error) {
	n := min(r.ShortWrite, max(len(p)-1, 0))
	if n > 0 {
		written, err := write(p[:n])
		if err != nil {
			return written, err
		}
		n = written
	}
	return n, fail(r, "write", h.name)
}

func (h *faultFile) Seek(offset int64, whence int) (int64, error) {
	if r, ok := h.fs.op(OpSeek, h.name); ok {
		return 0, fail(r, "seek", h.name)
	}
	return h.inner.Seek(offset, whence)
}

func (h *faultFile) Sync() error {
	if r, ok := h.fs.op(OpSync, h.name); ok {
		return fail(r, "sync", h.name)
	}
	return h.inner.Sync()
}

func (h *faultFile) Stat() (os.FileInfo, error) {
	if r, ok := h.fs.op(OpStat, h.name); ok {
		return nil, fail(r, "stat", h.name)
	}
	return h.inner.Stat()
}

func (h *faultFile) Readdir(count int) ([]os.FileInfo, error) {
	if r, ok := h.fs.op(OpReaddir, h.name); ok {
		return nil, fail(r, "readdir", h.name)
	}
	return h.inner.Readdir(count)
}

func (h *faultFile) Readdirnames(n int) ([]string, error) {
	if r, ok := h.fs.op(OpReaddir, h.name); ok {
		return nil, fail(r, "readdir", h.name)
	}
	return h.inner.Readdirnames(n)
}

func (h *faultFile) Truncate(size int64) error {
	if r, ok := h.fs.op(OpTruncate, h.name); ok {
		return fail(r, "truncate", h.name)
	}
	return h.inner.Truncate(size)
}
