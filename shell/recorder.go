package main

import (
	"bufio"
	"fmt"
	"io"
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
	mu   sync.Mutex
	f    *os.File
	bw   *bufio.Writer
	w    *core.RecordingWriter
	size int64
	max  int64
	full bool
	log  *slog.Logger
	// firstConn is the highest connection ID already in the file: this
	// run numbers its connections above it.
	firstConn uint64
}

// connBase is the number to start connection IDs above (0 without a recorder).
func (r *recorder) connBase() uint64 {
	if r == nil {
		return 0
	}
	return r.firstConn
}

func openRecorder(cfg RecordConfig, log *slog.Logger) (*recorder, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open record.path: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps no wider mode
		f.Close()
		return nil, fmt.Errorf("record.path: %w", err)
	}
	r := &recorder{f: f, bw: bufio.NewWriterSize(f, 256<<10), max: cfg.MaxBytes, log: log}
	if err := r.resume(); err != nil {
		f.Close()
		return nil, fmt.Errorf("record.path %s: %w (move it away to start a new recording)", cfg.Path, err)
	}
	log.Info("recording incoming traffic", "path", cfg.Path, "max_bytes", cfg.MaxBytes)
	return r, nil
}

// resume appends to what an earlier run recorded: it scans the file, cuts
// a partial last event (a crash mid-write), and numbers new connections
// above every earlier one so that a replay never mixes them up.
func (r *recorder) resume() error {
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tail, err := core.ScanRecording(bufio.NewReader(r.f))
	if err != nil {
		return err
	}
	if tail.Damage != nil {
		r.log.Warn("recording: cutting a damaged or partial tail", "at", tail.End, "damage", tail.Damage)
	}
	if err := r.f.Truncate(tail.End); err != nil {
		return err
	}
	if _, err := r.f.Seek(tail.End, io.SeekStart); err != nil {
		return err
	}
	r.size, r.firstConn = tail.End, tail.MaxConn
	if tail.End == 0 {
		r.w, err = core.NewRecordingWriter(r.bw)
		r.size = int64(r.bw.Buffered())
		return err
	}
	r.w = core.ResumeRecordingWriter(r.bw)
	return nil
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
