package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/bitville/apmd/core"
)

// recorder appends the incoming traffic to a file in core's recording
// format, for the simulator to replay. It is capped at max_bytes: past the
// cap it stops (once, with a log line) rather than grow or rotate. A nil
// *recorder records nothing.
type recorder struct {
	mu      sync.Mutex
	f       *os.File
	bw      *bufio.Writer
	w       *core.RecordingWriter
	size    int64
	max     int64
	full    bool
	log     *slog.Logger
	dropped int64
}

func openRecorder(cfg RecordConfig, log *slog.Logger) (*recorder, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open record.path: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps no wider mode
		f.Close()
		return nil, fmt.Errorf("record.path: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &recorder{f: f, bw: bufio.NewWriterSize(f, 256<<10), size: fi.Size(), max: cfg.MaxBytes, log: log}
	if fi.Size() == 0 {
		r.w, err = core.NewRecordingWriter(r.bw)
		if err != nil {
			f.Close()
			return nil, err
		}
		r.size = int64(r.bw.Buffered())
	} else {
		r.w = core.ResumeRecordingWriter(r.bw)
	}
	log.Info("recording incoming traffic", "path", cfg.Path, "max_bytes", cfg.MaxBytes)
	return r, nil
}

// event appends one event, unless the cap is reached.
func (r *recorder) event(ev core.RecEvent) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return
	}
	n := int64(core.EncodedRecEventSize(ev))
	if r.size+n > r.max {
		r.full = true
		r.log.Warn("recording stopped: record.max_bytes reached", "bytes", r.size)
		return
	}
	if _, err := r.w.Write(ev); err != nil {
		r.full = true
		r.log.Error("recording stopped: write failed", "err", err)
		return
	}
	r.size += n
}

// flush pushes buffered events to the file (on every tick, and at close).
func (r *recorder) flush() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.bw.Flush(); err != nil && !r.full {
		r.full = true
		r.log.Error("recording stopped: write failed", "err", err)
	}
}

func (r *recorder) close() {
	if r == nil {
		return
	}
	r.flush()
	r.f.Close()
}
