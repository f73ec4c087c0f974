package main

import (
	"context"

	"runtime"
	rtmetrics "runtime/metrics"
	"syscall"
	"time"

	"github.com/bitville/apmd/core"
)

// flight is the batch being POSTed.
type flight struct {
	bt     core.Batch
	cancel context.CancelFunc
}

type result struct {
	bt  core.Batch
	out core.Outcome
}

// loop is the owner: the only goroutine that calls core.
type loop struct {
	d         *daemon
	results   chan result
	inflight  *flight
	spare     [][]byte
	lastStats time.Time
	lastFail  uint64    // SpillFailures at the previous tick
	spillErr  string    // the latest spill error, for /readyz
	nextRetry time.Time // after a failed Next, not before this
}

// tickInterval is min(max_memory_age/4, 250ms) (DESIGN 4.4).
func tickInterval(cfg Config) time.Duration {
	return min(cfg.Buffer.MaxMemoryAge.Duration/4, 250*time.Millisecond)
}

func (d *daemon) run() int {
	sigs := signals()
	d.ingest.serve()
	l := &loop{d: d, results: make(chan result, 1), lastStats: time.Now()}
	ticker := time.NewTicker(max(tickInterval(d.cfg), time.Millisecond))
	defer ticker.Stop()
	d.log.Info("bitville-apmd running", "version", version, "socket", d.cfg.Ingest.Socket, "listener", d.cfg.Forward.URL,
		"api_key_from", d.key.source())
	l.publish(time.Now())
	for {
		l.trySend()
		select {
		case <-d.ingest.queue.notify:
			l.addQueued()
		case <-ticker.C:
			if l.tick() {
				d.log.Warn("heap above daemon.restart_heap_bytes: planned restart")
				return l.shutdown(exitRestart, sigs)
			}
		case res := <-l.results:
			l.resolve(res)
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				l.reloadKey("SIGHUP")
			case syscall.SIGUSR2:
				return l.shutdown(exitRestart, sigs)
			default:
				return l.shutdown(exitOK, sigs)
			}
		}
	}
}

// addQueued moves what the socket readers queued into the buffer.
func (l *loop) addQueued() {
	recs := l.d.ingest.queue.take(l.spare)
	now := time.Now()
	for i, r := range recs {
		if err := l.d.buf.Add(r, now); err != nil {
			l.d.log.Error("record not accepted", "err", err, "bytes", len(r))
		}
		recs[i] = nil
	}
	l.spare = recs
}

// trySend hands the next batch to the forwarder when nothing is in flight
// and the policy allows it.
func (l *loop) trySend() {
	now := time.Now()
	if l.inflight != nil || now.Before(l.nextRetry) || now.Before(l.d.policy.SendAt(now)) {
		return
	}
	maxRecords, maxBytes := l.d.policy.Limits()
	bt, err := l.d.buf.Next(maxRecords, maxBytes, now)
	if err != nil {
		// A segment that cannot be read: try again in a second, not on
		// every record that arrives (core gives it up after read_give_up).
		l.nextRetry = now.Add(time.Second)
		l.logLimited("next", "cannot read the next batch; retrying", "err", err)
		return
	}
	if len(bt.Records) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.inflight = &flight{bt: bt, cancel: cancel}
	go func() { l.results <- result{bt: bt, out: l.d.forward.send(ctx, bt)} }()
}

// resolve applies the policy's decision on the answer to the batch in flight.
func (l *loop) resolve(res result) {
	l.inflight.cancel()
	l.inflight = nil
	now := time.Now()
	l.d.metrics.requests.WithLabelValues(res.out.Label()).Inc()
	dec := l.d.policy.Decide(res.bt, res.out, now)
	var err error
	switch dec.Action {
	case core.ActAck:
		err = l.d.buf.Ack(now)
	case core.ActDeadLetter:
		if err = l.d.buf.DeadLetter(dec.Reason, now); err != nil {
			err = l.d.buf.Nack(now) // keep the batch; the policy sends it again
		} else {
			l.d.log.Warn("records dead-lettered", "reason", dec.Reason, "first", res.bt.First(), "last", res.bt.Last())
		}
	default:
		err = l.d.buf.Nack(now)
		if res.out.Kind != core.OutcomeHTTP || res.out.Code >= 300 {
			l.logLimited("answer:"+res.out.Label(), "batch not delivered; will retry", "answer", res.out.Label(),
				"records", len(res.bt.Records), "retry_at", dec.RetryAt.Format(time.RFC3339Nano))
		}
	}
	if err != nil {
		l.d.log.Error("buffer refused the answer", "err", err)
	}
	if dec.ReloadKey {
		l.reloadKey("401 from the listener")
	}
	l.publish(now)
}

func (l *loop) reloadKey(why string) {
	if err := l.d.key.reload(); err != nil {
		l.d.log.Error("API key not reloaded; keeping the previous one", "why", why, "err", err)
		return
	}
	l.d.log.Info("API key reloaded", "why", why, "from", l.d.key.source())
}

// tick drives core's timers, reads free space, flushes the recording,
// logs the stats line and reports whether a planned restart is due.
func (l *loop) tick() (restart bool) {
	now := time.Now()
	l.d.buf.Tick(now)
	var fs syscall.Statfs_t
	if syscall.Statfs(l.d.cfg.Buffer.Dir, &fs) == nil {
		l.d.buf.SetFreeBytes(int64(fs.Bavail) * int64(fs.Bsize))
	}
	errs, more := l.d.buf.TakeIOErrors()
	for _, err := range errs {
		l.logLimited("io", "spool I/O error (retried later)", "err", err, "more", more)
		l.spillErr = err.Error()
	}
	l.d.recorder.flush()
	s := l.publish(now)
	if every := l.d.cfg.Log.StatsEvery.Duration; every > 0 && now.Sub(l.lastStats) >= every {
		l.lastStats = now
		l.statsLine(s)
	}
	return l.d.cfg.Daemon.RestartHeapBytes > 0 && heapBytes() > uint64(l.d.cfg.Daemon.RestartHeapBytes)
}

// publish stores a snapshot for the metrics and the readiness reason.
func (l *loop) publish(now time.Time) core.Stats {
	s := l.d.buf.Stats(now)
	l.d.metrics.snap.Store(&snapshot{stats: s, breaker: l.d.policy.State(now),
		queueBytes: l.d.ingest.queue.held(), connections: l.d.ingest.active.Load()})
	l.d.admin.setNotReady(l.notReadyReason(s, now))
	return s
}

func (l *loop) notReadyReason(s core.Stats, now time.Time) string {
	if r := l.d.policy.NotReady(now); r != "" {
		return r
	}
	b := l.d.cfg.Buffer
	if s.DiskBytes+b.SegmentBytes > b.DiskBytes {
		return "disk cap reached: " + itoa(s.DiskBytes) + " of " + itoa(b.DiskBytes) + " bytes (buffer.disk_bytes); records are being dropped by " + b.WhenFull
	}
	if s.SpillFailures > l.lastFail {
		l.lastFail = s.SpillFailures
		return "spills failing: " + l.spillErr
	}
	return ""
}

func (l *loop) statsLine(s core.Stats) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	l.d.log.Info("stats", "received", s.Accepted, "delivered", s.Delivered, "dropped", s.DroppedFromBuffer(),
		"memory_records", s.MemoryRecords, "memory_limit", l.d.cfg.Buffer.MemoryRecords, "spilled_segments", s.SpilledSegments,
		"disk_bytes", s.DiskBytes, "disk_records", s.DiskRecords, "in_flight", s.InFlightRecords,
		"lag", s.OldestRecordAge.Round(time.Millisecond), "process_memory", ms.Sys, "gc_runs", ms.NumGC)
}

func (l *loop) logLimited(key, msg string, args ...any) {
	if ok, held := l.d.ingest.limiter.allow(key, time.Now()); ok {
		l.d.log.Warn(msg, append(args, "similar_suppressed", held)...)
	}
}

func heapBytes() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() == rtmetrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}
