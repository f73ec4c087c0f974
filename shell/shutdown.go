package main

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/bitville/apmd/core"
)

// shutdown stops gracefully: stop accepting, add what was read, cancel the
// request in flight, spill, exit with code. A second signal cuts the waits
// short and goes straight to the spill. Records that could not be saved
// turn the exit code into 1.
func (l *loop) shutdown(code int, sigs chan os.Signal) int {
	d := l.d
	d.log.Info("stopping", "exit_code", code)
	hurry, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if _, ok := <-sigs; ok {
			d.log.Warn("second signal: stopping at once after a best-effort spill")
			cancel()
		}
	}()
	budget := d.cfg.Daemon.ShutdownTimeout.Duration
	ctx, stop := context.WithTimeout(hurry, budget/2)
	d.ingest.stop(ctx)
	stop()
	l.addQueued()
	l.cancelInflight(hurry, budget/2)
	err := d.buf.Shutdown(time.Now())
	s := d.buf.Stats(time.Now())
	d.admin.stop()
	d.release()
	if err != nil {
		d.log.Error("records could not be saved", "err", err)
		return exitNotSaved
	}
	d.log.Info("stopped", "received", s.Accepted, "delivered", s.Delivered, "saved_on_disk", s.DiskRecords)
	return code
}

// cancelInflight cancels the request in flight and applies its answer if
// one arrives in time; without one the batch is put back (Shutdown spills it).
func (l *loop) cancelInflight(hurry context.Context, wait time.Duration) {
	if l.inflight == nil {
		return
	}
	l.inflight.cancel()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case res := <-l.results:
		if res.out.Kind == core.OutcomeHTTP && res.out.Code/100 == 2 {
			l.d.buf.Ack(time.Now()) // delivered just before the cancel
		} else {
			l.d.buf.Nack(time.Now())
		}
	case <-t.C:
		l.d.buf.Nack(time.Now())
	case <-hurry.Done():
		l.d.buf.Nack(time.Now())
	}
	l.inflight = nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// expired is a context that is already done, for stops that must not wait.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
