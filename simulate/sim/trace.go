package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
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
	t.buf = append(t.buf, '\n')
	t.h.Write(t.buf)
	if t.out != nil {
		_, _ = t.out.Write(t.buf)
	}
}

// digest returns the hex SHA-256 of every line so far.
func (t *tracer) digest() string {
	return hex.EncodeToString(t.h.Sum(nil))
}
