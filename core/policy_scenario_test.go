package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// policyDriver feeds answers to a Policy at simulated times, always
// sending as soon as SendAt allows, as a host would.
type policyDriver struct {
	t   *testing.T
	p   *Policy
	now time.Time
	seq uint64
}

func newPolicyDriver(t *testing.T, cfg PolicyConfig, seed byte) *policyDriver {
	return &policyDriver{t: t, p: newTestPolicy(t, cfg, seed), now: t0, seq: 1}
}

// answer waits until SendAt, sends a 4-record batch and returns the
// decision and the wait it imposes.
func (dr *policyDriver) answer(out Outcome) (Decision, time.Duration) {
	dr.t.Helper()
	if at := dr.p.SendAt(time.Time{}); at.After(dr.now) {
		dr.now = at
	}
	bt := policyBatch(dr.seq, 4)
	d := dr.p.Decide(bt, out, dr.now)
	if d.Action == ActAck {
		dr.seq += 4
	}
	if at := dr.p.SendAt(time.Time{}); at.After(dr.now) {
		return d, at.Sub(dr.now)
	}
	return d, 0
}

func (dr *policyDriver) expectState(want BreakerState, notReady string) {
	dr.t.Helper()
	if s := dr.p.State(dr.now); s != want {
		dr.t.Fatalf("at +%s: breaker %v, want %v", dr.now.Sub(t0), s, want)
	}
	if got := dr.p.NotReady(dr.now); !strings.Contains(got, notReady) || (notReady == "") != (got == "") {
		dr.t.Fatalf("at +%s: NotReady %q, want %q", dr.now.Sub(t0), got, notReady)
	}
}

// Failures = 3, OpenFor = 10 s, MaxOpenFor = 80 s: the third failure opens
// the breaker for [7.5 s, 10 s]; each failed probe doubles the period
// (20 s, 40 s, 80 s, then 80 s again), jittered into [3/4 p, p].
func TestPolicyBreakerCycle(t *testing.T) {
	dr := newPolicyDriver(t, policyTestConfig(), 7)
	timeout := Outcome{Kind: OutcomeTimeout}
	for range 2 {
		if _, wait := dr.answer(timeout); wait > 8*time.Second {
			t.Fatalf("backoff %s while closed", wait)
		}
		dr.expectState(BreakerClosed, "")
	}
	_, wait := dr.answer(httpAnswer(502))
	checkOpenPeriod(t, wait, 10*time.Second)
	dr.expectState(BreakerOpen, "breaker open after 3 consecutive failures (last: 502 Bad Gateway); next probe in")
	dr.now = dr.now.Add(wait - time.Millisecond)
	dr.expectState(BreakerOpen, "breaker open")
	dr.now = dr.p.SendAt(time.Time{})
	dr.expectState(BreakerHalfOpen, "breaker half-open after 3 consecutive failures (last: 502 Bad Gateway); probing")

	for _, period := range []time.Duration{20, 40, 80, 80} {
		_, wait = dr.answer(Outcome{Kind: OutcomeRefused}) // the probe fails
		checkOpenPeriod(t, wait, period*time.Second)
		dr.expectState(BreakerOpen, "(last: connection refused)")
	}
	dr.now = dr.p.SendAt(time.Time{})
	dr.expectState(BreakerHalfOpen, "after 7 consecutive failures")

	if d, wait := dr.answer(httpAnswer(200)); d.Action != ActAck || wait != 0 {
		t.Fatalf("probe success: %+v, wait %s", d, wait)
	}
	dr.expectState(BreakerClosed, "")

	// Closed again: it takes Failures failures to reopen, for OpenFor again.
	dr.answer(timeout)
	dr.answer(timeout)
	dr.expectState(BreakerClosed, "")
	_, wait = dr.answer(timeout)
	checkOpenPeriod(t, wait, 10*time.Second)
}

func checkOpenPeriod(t *testing.T, wait, period time.Duration) {
	t.Helper()
	if wait < period*3/4 || wait > period {
		t.Fatalf("open for %s, want [%s, %s]", wait, period*3/4, period)
	}
}

// 408, 429 and 503 neither count toward the breaker nor reset its count;
// a half-open probe answered 503 leaves the breaker half-open.
func TestPolicyThrottlingDoesNotCount(t *testing.T) {
	dr := newPolicyDriver(t, policyTestConfig(), 7)
	dr.answer(httpAnswer(500))
	dr.answer(httpAnswer(500))
	for _, code := range []int{408, 429, 503, 503, 429, 408, 503} {
		dr.answer(retryAfter(code, "2"))
		dr.expectState(BreakerClosed, "")
	}
	dr.answer(httpAnswer(500))
	dr.expectState(BreakerOpen, "after 3 consecutive failures")
	dr.now = dr.p.SendAt(time.Time{})
	if _, wait := dr.answer(retryAfter(503, "4")); wait != 4*time.Second {
		t.Fatalf("probe answered 503 with Retry-After 4: wait %s", wait)
	}
	dr.expectState(BreakerHalfOpen, "after 3") // the next batch is still the probe
	dr.answer(httpAnswer(204))
	dr.expectState(BreakerClosed, "")
}

// Backoff while closed (breaker.failures out of reach): the n-th delay lies
// in [b/2, b] with b = min(1 s · 2^(n-1), 8 s); a 2xx starts over.
func TestPolicyBackoffGrowsWithJitter(t *testing.T) {
	cfg := policyTestConfig()
	cfg.Failures = 1000
	dr := newPolicyDriver(t, cfg, 3)
	waits := backoffWaits(dr, 12)
	for i, w := range waits {
		b := min(time.Second<<i, 8*time.Second)
		if w < b/2 || w > b {
			t.Errorf("retry %d: waited %s, want [%s, %s]", i+1, w, b/2, b)
		}
	}
	if slices.Equal(waits[6:], []time.Duration{8e9, 8e9, 8e9, 8e9, 8e9, 8e9}) {
		t.Errorf("capped delays are not jittered: %v", waits)
	}
	dr.answer(httpAnswer(200))
	if w := backoffWaits(dr, 1)[0]; w < 500*time.Millisecond || w > time.Second {
		t.Errorf("after a 2xx the backoff did not start over: %s", w)
	}
	// Pinned: integer jitter makes this trace identical natively and under
	// wasip1 (CI runs this test in both).
	golden := "[683ms 1.3s 3.02s 7.632s 6.28s 5.8s 4.56s 7.176s 7.128s 6.992s 7.552s 6.744s]"
	if got := fmt.Sprint(waits); got != golden {
		t.Errorf("backoff waits for seed 3:\n got %s\nwant %s", got, golden)
	}
}

func backoffWaits(dr *policyDriver, n int) []time.Duration {
	var out []time.Duration
	for range n {
		_, wait := dr.answer(Outcome{Kind: OutcomeError})
		out = append(out, wait)
	}
	return out
}

// The same seed gives the same delays (a simulator trace replays); other
// seeds give others.
func TestPolicyJitterIsSeeded(t *testing.T) {
	run := func(seed byte) []time.Duration {
		cfg := policyTestConfig()
		cfg.Failures = 1000
		return backoffWaits(newPolicyDriver(t, cfg, seed), 10)
	}
	a, b := run(1), run(1)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different delays:\n%v\n%v", a, b)
	}
	for seed := byte(2); seed < 6; seed++ {
		if c := run(seed); slices.Equal(a, c) {
			t.Errorf("seeds 1 and %d give the same delays %v", seed, c)
		}
	}
}

// A 413 halves the limits from the refused batch (16 records, 1600 bytes →
// 8, 800 → 4, 400); every GrowAfter = 2 consecutive 2xx double them back
// to the configured 16 records, 1600 bytes. A lone record answered 413
// is dead-lettered without touching the limits.
func TestPolicyAdaptiveLimit(t *testing.T) {
	cfg := policyTestConfig()
	cfg.BatchBytes = 1600
	p := newTestPolicy(t, cfg, 1)
	expect := func(step string, records int, bytes int64) {
		t.Helper()
		if r, b := p.Limits(); r != records || b != bytes {
			t.Fatalf("%s: limits (%d, %d), want (%d, %d)", step, r, b, records, bytes)
		}
	}
	expect("start", 16, 1600)
	p.Decide(policyBatch(1, 16), httpAnswer(413), t0)
	expect("413 on 16", 8, 800)
	p.Decide(policyBatch(1, 8), httpAnswer(413), t0)
	expect("413 on 8", 4, 400)
	if d := p.Decide(policyBatch(1, 1), httpAnswer(413), t0); d.Action != ActDeadLetter || d.Reason != DropTooLarge {
		t.Fatalf("413 on one record: %+v", d)
	}
	expect("413 on 1", 4, 400)
	p.Decide(policyBatch(2, 4), httpAnswer(200), t0)
	expect("1 success", 4, 400)
	p.Decide(policyBatch(6, 4), retryAfter(503, "1"), t0) // neither counts nor resets the streak
	p.Decide(policyBatch(6, 4), httpAnswer(200), t0)
	expect("2 successes", 8, 800)
	p.Decide(policyBatch(10, 8), httpAnswer(200), t0)
	p.Decide(policyBatch(18, 8), httpAnswer(200), t0)
	expect("4 successes", 16, 1600)
	p.Decide(policyBatch(26, 16), httpAnswer(200), t0)
	expect("at the configured limits", 16, 1600)
}

// Every NotReady text is one non-empty line while not ready.
func TestPolicyNotReadyIsOneLine(t *testing.T) {
	outs := []Outcome{{Kind: OutcomeTimeout}, {Kind: OutcomeRefused}, {Kind: OutcomeError}, httpAnswer(500), httpAnswer(101), httpAnswer(777)}
	for code := 300; code < 500; code++ {
		outs = append(outs, httpAnswer(code))
	}
	for _, out := range outs {
		dr := newPolicyDriver(t, policyTestConfig(), 1)
		for range 3 {
			dr.answer(out)
		}
		if classify(out) != classConfig && classify(out) != classFailure {
			continue
		}
		for _, at := range []time.Time{dr.now, dr.p.SendAt(time.Time{})} {
			s := dr.p.NotReady(at)
			if s == "" || strings.ContainsAny(s, "\r\n") {
				t.Errorf("%s: NotReady %q, want one non-empty line", out.Label(), s)
			}
		}
	}
}

// The latest answer wins when a configuration error and an open breaker
// both hold; a 2xx clears both.
func TestPolicyNotReadyLatestAnswerWins(t *testing.T) {
	dr := newPolicyDriver(t, policyTestConfig(), 1)
	if d, _ := dr.answer(httpAnswer(401)); !d.ReloadKey {
		t.Fatal("401 without ReloadKey")
	}
	dr.expectState(BreakerClosed, "listener answers 401 Unauthorized: check forward.api_key")
	dr.answer(httpAnswer(500))
	dr.expectState(BreakerClosed, "401 Unauthorized") // not proven fixed
	dr.answer(httpAnswer(500))
	dr.answer(httpAnswer(500))
	dr.expectState(BreakerOpen, "breaker open after 3 consecutive failures (last: 500 Internal Server Error)")
	dr.now = dr.p.SendAt(time.Time{})
	dr.answer(httpAnswer(403))
	dr.expectState(BreakerHalfOpen, "listener answers 403 Forbidden")
	dr.now = dr.p.SendAt(time.Time{})
	dr.answer(httpAnswer(200))
	dr.expectState(BreakerClosed, "")
}
