package main

// End-to-end: outages, restarts, crashes, bad lines and the metrics that
// count them.

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sendConns sends perConn records on each of conns connections at once;
// the IDs are "<prefix><conn>-<n>". It returns the IDs in the order each
// connection wrote them.
func sendConns(t *testing.T, e *e2eEnv, prefix string, conns, perConn int) []string {
	t.Helper()
	var sent []string
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		var lines []string
		for i := range perConn {
			id := fmt.Sprintf("%s%d-%03d", prefix, c, i)
			sent = append(sent, id)
			lines = append(lines, rec(id)+"\n")
		}
		wg.Go(func() {
			// Several writes per connection, so records cross read boundaries.
			half := len(lines) / 2
			if err := e.trySend(strings.Join(lines[:half], ""), strings.Join(lines[half:], "")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}
	return sent
}

// Test 1: the listener is down (it closes every connection) while 300
// records arrive over 6 connections; SIGTERM saves them; a restart on the
// same spool delivers each exactly once in the first-delivery order, under
// the same agent ID and sequence numbers.
func TestE2EOutageAndRestart(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	l.setAnswer(func(*fakeRequest) fakeAnswer { return fakeAnswer{Close: true} })
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.MemoryRecords = 40 })
	p := e.start()
	sent := sendConns(t, e, "c", 6, 50)
	e.waitMetric(300, "records_received_total")
	waitFor(t, "records on disk", func() (bool, string) {
		m := e.scrape()
		return m.get("buffer_memory_bytes") == 0 && m.get("buffer_disk_records")+m.get("buffer_inflight_records") == 300,
			fmt.Sprintf("memory bytes %v, disk %v", m.get("buffer_memory_bytes"), m.get("buffer_disk_records"))
	})
	if m := e.scrape(); m.get("records_delivered_total") != 0 || m.get("forward_requests_total", "code", "error") == 0 {
		t.Errorf("while the listener is down: delivered %v, requests failing with error %v",
			m.get("records_delivered_total"), m.get("forward_requests_total", "code", "error"))
	}
	if code := p.stop(syscall.SIGTERM); code != exitOK {
		t.Fatalf("SIGTERM: exit code %d, want 0", code)
	}
	down := l.requests()
	if len(down) == 0 {
		t.Fatal("the daemon never tried the listener during the outage")
	}

	l.answerCode(200)
	e.start()
	m := e.waitDrained(300)
	if got := m.get("records_recovered_total"); got != 300 {
		t.Errorf("records_recovered_total = %v, want 300", got)
	}
	if got := m.sum("records_dropped_total"); got != 0 {
		t.Errorf("records dropped: %v", got)
	}
	reqs := l.requests()
	order := checkDelivery(t, reqs, sent) // also: one agent ID across the restart
	checkOrderWithin(t, order)
	if reqs[len(reqs)-1].Agent != down[0].Agent {
		t.Errorf("agent changed across the restart: %q then %q", down[0].Agent, reqs[len(reqs)-1].Agent)
	}
}

// Test 2: kill -9 while the listener is down, once max_memory_age has
// passed: everything was spilled, so nothing is lost.
func TestE2EKill9AfterMaxMemoryAge(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	l.answerCode(503) // no Retry-After: backoff
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.MemoryRecords = 1000 })
	p := e.start()
	sent := sendConns(t, e, "k", 3, 40)
	e.waitMetric(120, "records_received_total")
	// max_memory_age is 200ms and the tick 50ms: after that every record,
	// the one in flight included, is in a durable segment.
	waitFor(t, "memory spilled by age", func() (bool, string) {
		m := e.scrape()
		return m.get("buffer_memory_bytes") == 0 && m.get("spill_segments_total") > 0,
			fmt.Sprintf("memory bytes %v", m.get("buffer_memory_bytes"))
	})
	p.kill()
	if p.code != -1 {
		t.Fatalf("kill -9: exit code %d", p.code)
	}

	l.answerCode(200)
	e.start()
	m := e.waitDrained(120)
	if got := m.get("records_recovered_total"); got != 120 {
		t.Errorf("records_recovered_total = %v, want 120", got)
	}
	checkOrderWithin(t, checkDelivery(t, l.requests(), sent))
}

// Test 8: SIGUSR2 is a planned restart: exit 75 with every record spilled,
// even those still in memory (max_memory_age is long here).
func TestE2EPlannedRestartSIGUSR2(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	l.answerCode(503)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.MemoryRecords = 1000; o.MaxMemoryAge = "1m" })
	p := e.start()
	sent := sendConns(t, e, "u", 2, 50)
	e.waitMetric(100, "records_received_total")
	if m := e.scrape(); m.get("spill_segments_total") != 0 {
		t.Fatalf("spilled before the signal (%v segments): the test would prove nothing", m.get("spill_segments_total"))
	}
	if code := p.stop(syscall.SIGUSR2); code != exitRestart {
		t.Fatalf("SIGUSR2: exit code %d, want 75", code)
	}
	l.answerCode(200)
	e.start()
	m := e.waitDrained(100)
	if got := m.get("records_recovered_total"); got != 100 {
		t.Errorf("records_recovered_total = %v, want 100", got)
	}
	checkOrderWithin(t, checkDelivery(t, l.requests(), sent))
}

// Test 3: bad lines on one connection are rejected by reason and never
// disturb the good ones around them.
func TestE2EBadLines(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url() })
	e.start()
	if err := e.trySend(
		rec("good-1")+"\n",
		`{"correlation_id":"broken",`+"\n", // invalid JSON
		`[1,2,3]`+"\n",                     // not an object
		recPadded("big", 5000)+"\n",        // over max_record_bytes 4096
		"\n",                               // ignored
		rec("good-2")+"\n",
		`{"correlation_id":"cut-short"`, // unterminated at close: truncated
	); err != nil {
		t.Fatal(err)
	}
	e.waitMetric(1, "records_rejected_total", "reason", "truncated")
	m := e.waitDrained(2)
	for reason, want := range map[string]float64{"invalid_json": 1, "not_object": 1, "oversized": 1, "truncated": 1, "overload": 0} {
		if got := m.get("records_rejected_total", "reason", reason); got != want {
			t.Errorf("records_rejected_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := m.get("records_received_total"); got != 2 {
		t.Errorf("records_received_total = %v, want 2", got)
	}
	order := checkDelivery(t, l.requests(), []string{"good-1", "good-2"})
	if strings.Join(order, ",") != "good-1,good-2" {
		t.Errorf("delivered %v, want good-1, good-2", order)
	}
}

// Test 7: the metrics add up after a run with N good and M bad lines and
// full delivery.
func TestE2EMetricsMatchCounts(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.BatchRecords = 7 })
	e.start()
	const good = 60
	sent := sendConns(t, e, "m", 3, good/3)
	bad := []string{
		"{nope\n", "[]\n", "42\n", "\"str\"\n", recPadded("huge", 9000) + "\n", "\n", "\n", // 5 rejected, 2 ignored
		`{"correlation_id":"partial"`, // truncated
	}
	const rejected = 6
	if err := e.trySend(bad...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every line counted", func() (bool, string) {
		m := e.scrape()
		return m.sum("records_rejected_total") == rejected && m.get("records_delivered_total") == good &&
				m.get("buffer_inflight_records") == 0,
			fmt.Sprintf("rejected %v delivered %v", m.sum("records_rejected_total"), m.get("records_delivered_total"))
	})
	m := e.waitDrained(good)
	reqs := l.requests()
	checkDelivery(t, reqs, sent)
	for name, want := range map[string]float64{
		"records_received_total":    good,
		"records_delivered_total":   good,
		"records_recovered_total":   0,
		"records_redelivered_total": 0,
		"buffer_memory_records":     0,
		"buffer_memory_bytes":       0,
		"buffer_disk_records":       0,
		"buffer_inflight_records":   0,
		"breaker_state":             0,
		"dead_letter_files":         0,
		"quarantine_files":          0,
		"ingest_queue_bytes":        0,
	} {
		if got, ok := m.find(name); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if got := m.sum("records_rejected_total"); got != rejected {
		t.Errorf("records_rejected_total sums to %v, want %v", got, rejected)
	}
	if got := m.sum("records_dropped_total"); got != 0 {
		t.Errorf("records_dropped_total sums to %v, want 0", got)
	}
	if got := m.get("forward_requests_total", "code", "200"); got != float64(len(reqs)) {
		t.Errorf("forward_requests_total{code=200} = %v, the listener saw %d requests", got, len(reqs))
	}
	if got := m.sum("forward_requests_total"); got != float64(len(reqs)) {
		t.Errorf("forward_requests_total sums to %v, the listener saw %d requests", got, len(reqs))
	}
	if len(reqs) < good/7 {
		t.Errorf("%d requests for %d records in batches of at most 7", len(reqs), good)
	}
	for _, r := range reqs {
		if len(r.Lines) > 7 {
			t.Errorf("request %d holds %d records, batch_records is 7", r.N, len(r.Lines))
		}
	}
	if v, ok := m.find("build_info"); !ok || v != 1 {
		t.Errorf("build_info = %v (present %v), want 1", v, ok)
	}
	for _, s := range m {
		if s.name == ns+"_build_info" && s.labels["version"] == "" {
			t.Errorf("build_info has no version label: %v", s.labels)
		}
	}
	if code, body := e.readyz(); code != 200 || body != "ready" {
		t.Errorf("/readyz = %d %q, want 200 ready", code, body)
	}
}

// Test 6: a second daemon on the same spool exits 73 while the first runs;
// so does one on another spool whose socket the first answers on.
func TestE2ESecondDaemonOnSameSpool(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	first := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url() })
	p := first.start()

	sameSpool := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.Spool = first.o.Spool })
	code, stderr := sameSpool.runToExit()
	if code != exitSpoolLocked {
		t.Errorf("second daemon on the same spool: exit code %d, want 73\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "locked") {
		t.Errorf("second daemon's stderr does not say the spool is locked:\n%s", stderr)
	}

	sameSocket := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.Socket = first.o.Socket })
	if code, stderr := sameSocket.runToExit(); code != exitSpoolLocked {
		t.Errorf("second daemon on the same socket: exit code %d, want 73\n%s", code, stderr)
	}

	// The first one is undisturbed: its socket is still there and works.
	first.send(rec("still-1"), rec("still-2"))
	first.waitDrained(2)
	checkDelivery(t, l.requests(), []string{"still-1", "still-2"})
	if code := p.stop(syscall.SIGINT); code != exitOK {
		t.Errorf("SIGINT: exit code %d, want 0", code)
	}
}

// A batch handed out from memory is still in flight when max_memory_age
// spills it: the answer that comes after the spill (an ack, or a
// dead-letter of a lone poison record) must resolve the records now on
// disk. The listener holds each first answer past max_memory_age.
func TestE2EAnswerAfterBatchSpilledInFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		lines   []string
		sent    []string
		code    int
		dropped []string
	}{
		{"ack", []string{rec("s-0"), rec("s-1"), rec("s-2")}, []string{"s-0", "s-1", "s-2"}, 200, nil},
		{"dead-letter", []string{`{"correlation_id":"s-0","poison":true}`}, []string{"s-0"}, 400, []string{"s-0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newFakeListener(t)
			l.setAnswer(func(r *fakeRequest) fakeAnswer {
				if r.N == 0 {
					return fakeAnswer{Code: tc.code, Sleep: 600 * time.Millisecond} // max_memory_age is 200ms
				}
				return fakeAnswer{Code: 200}
			})
			e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url(); o.MemoryRecords = 1000 })
			p := e.start()
			e.send(tc.lines...)
			waitFor(t, "the batch in flight spilled", func() (bool, string) {
				m := e.scrape()
				return m.get("spill_segments_total") > 0 && m.get("buffer_inflight_records") > 0,
					fmt.Sprintf("segments %v in flight %v", m.get("spill_segments_total"), m.get("buffer_inflight_records"))
			})
			m := e.waitDrained(float64(len(tc.sent)))
			if got := m.sum("records_dropped_total"); got != float64(len(tc.dropped)) {
				t.Errorf("dropped %v, want %d", got, len(tc.dropped))
			}
			checkDelivery(t, l.requests(), tc.sent, tc.dropped...)
			if code := p.stop(syscall.SIGTERM); code != exitOK {
				t.Errorf("SIGTERM: exit code %d, want 0", code)
			}
		})
	}
}
