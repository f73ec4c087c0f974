package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"syscall"
)

// tracer builds the canonical trace: one line per step, the event and the
// state that resulted. Every line goes into the digest; with a writer
// (simulate -v) it is printed too.
type tracer struct {
	h   hash.Hash
	out io.Writer
	buf []byte
}

func newTracer(out io.Writer) *tracer {
	return &tracer{h: sha256.New(), out: out}
}

// line adds one line to the trace.
func (t *tracer) line(format string, args ...any) {
	t.buf = fmt.Appendf(t.buf[:0], format, args...)
	t.buf = append([]byte(errnoNames.Replace(string(t.buf))), '\n')
	t.h.Write(t.buf)
	if t.out != nil {
		_, _ = t.out.Write(t.buf)
	}
}

// errnoNames writes system error texts as their names: the texts differ
// by platform ("input/output error" on Linux, "I/O error" on wasip1) and
// the trace must not.
var errnoNames = func() *strings.Replacer {
	var pairs []string
	for _, e := range []syscall.Errno{syscall.EIO, syscall.ENOSPC, syscall.ENOENT, syscall.EEXIST,
		syscall.ENOTEMPTY, syscall.ENOTDIR, syscall.EISDIR, syscall.EBADF, syscall.EINVAL, syscall.EPERM, syscall.EACCES} {
		pairs = append(pairs, ": "+e.Error(), ": "+errnoName(e)) // after a colon: an error text, not prose
	}
	return strings.NewReplacer(pairs...)
}()

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EIO:
		return "EIO"
	case syscall.ENOSPC:
		return "ENOSPC"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.ENOTEMPTY:
		return "ENOTEMPTY"
	case syscall.ENOTDIR:
		return "ENOTDIR"
	case syscall.EISDIR:
		return "EISDIR"
	case syscall.EBADF:
		return "EBADF"
	case syscall.EINVAL:
		return "EINVAL"
	case syscall.EPERM:
		return "EPERM"
	}
	return "EACCES"
}

// digest returns the hex SHA-256 of every line so far.
func (t *tracer) digest() string {
	return hex.EncodeToString(t.h.Sum(nil))
}
