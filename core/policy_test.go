package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// policyTestConfig is small enough to reason about in comments: batches of
// 16 records or 1 MiB; the breaker opens after 3 failures for 10 s,
// doubling up to 80 s; backoff 1 s → 8 s; config errors retried every 30 s;
// a 413-halved limit doubles back after 2 successes.
func policyTestConfig() PolicyConfig {
	return PolicyConfig{
		BatchRecords: 16,
		BatchBytes:   1 << 20,
		Failures:     3,
		OpenFor:      10 * time.Second,
		MaxOpenFor:   80 * time.Second,
		BackoffMin:   time.Second,
		BackoffMax:   8 * time.Second,
		ConfigRetry:  30 * time.Second,
		GrowAfter:    2,
	}
}

func newTestPolicy(t testing.TB, cfg PolicyConfig, seed byte) *Policy {
	t.Helper()
	p, err := NewPolicy(cfg, rand.NewChaCha8([32]byte{seed}))
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

// policyBatch makes a batch of n records of 100 bytes numbered from first.
func policyBatch(first uint64, n int) Batch {
	var bt Batch
	for i := range n {
		bt.Records = append(bt.Records, Record{Seq: first + uint64(i), Data: record(int(first)+i, 100)})
		bt.Bytes += 100
	}
	return bt
}

func httpAnswer(code int) Outcome { return Outcome{Kind: OutcomeHTTP, Code: code} }

func retryAfter(code int, v string) Outcome {
	return Outcome{Kind: OutcomeHTTP, Code: code, RetryAfter: v}
}

func TestPolicyConfigValidate(t *testing.T) {
	if err := DefaultPolicyConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	if err := policyTestConfig().Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	cases := []struct {
		key string
		mod func(*PolicyConfig)
	}{
		{"forward.batch_records", func(c *PolicyConfig) { c.BatchRecords = 0 }},
		{"forward.batch_records", func(c *PolicyConfig) { c.BatchRecords = maxBatchRecords + 1 }},
		{"forward.batch_bytes", func(c *PolicyConfig) { c.BatchBytes = 0 }},
		{"forward.batch_bytes", func(c *PolicyConfig) { c.BatchBytes = maxBatchBytes + 1 }},
		{"breaker.failures", func(c *PolicyConfig) { c.Failures = 0 }},
		{"forward.grow_after", func(c *PolicyConfig) { c.GrowAfter = 0 }},
		{"breaker.open_for", func(c *PolicyConfig) { c.OpenFor = 0 }},
		{"breaker.open_for", func(c *PolicyConfig) { c.OpenFor = 25 * time.Hour }},
		{"breaker.max_open_for", func(c *PolicyConfig) { c.MaxOpenFor = c.OpenFor - 1 }},
		{"breaker.max_open_for", func(c *PolicyConfig) { c.OpenFor, c.MaxOpenFor = 100*time.Millisecond, 500*time.Millisecond }},
		{"breaker.max_open_for", func(c *PolicyConfig) { c.MaxOpenFor = 25 * time.Hour }},
		{"forward.backoff_min", func(c *PolicyConfig) { c.BackoffMin = -time.Second }},
		{"forward.backoff_max", func(c *PolicyConfig) { c.BackoffMax = c.BackoffMin - 1 }},
		{"forward.backoff_max", func(c *PolicyConfig) { c.BackoffMax = 25 * time.Hour }},
		{"forward.config_retry", func(c *PolicyConfig) { c.ConfigRetry = 0 }},
	}
	for _, tc := range cases {
		c := policyTestConfig()
		tc.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: got %v, want an ErrInvalidConfig naming it", tc.key, err)
		}
		if _, err := NewPolicy(c, rand.NewChaCha8([32]byte{})); err == nil {
			t.Errorf("%s: NewPolicy accepted an invalid config", tc.key)
		}
	}
	if _, err := NewPolicy(policyTestConfig(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil entropy: got %v", err)
	}
}

// window is the accepted range of RetryAt - now.
type window struct{ lo, hi time.Duration }

func exactly(d time.Duration) window { return window{d, d} }

// backoff1 is the first backoff: 1 s with equal jitter.
var backoff1 = window{500 * time.Millisecond, time.Second}

// TestPolicyAnswers covers every answer of DESIGN 4.2, each the first
// answer a fresh policy sees, for a batch of 8 records (800 bytes) or 1.
func TestPolicyAnswers(t *testing.T) {
	now := t0
	imf := func(d time.Duration) string { return now.Add(d).Format("Mon, 02 Jan 2006 15:04:05 GMT") }
	type want struct {
		act      Action
		reason   DropReason
		wait     window // with ActRetry
		reload   bool
		limits   [2]int64 // records, bytes after the answer
		notReady string   // a substring of NotReady; "" means ready
	}
	full := [2]int64{16, 1 << 20}
	ack := want{act: ActAck, limits: full}
	retry := func(w window) want { return want{act: ActRetry, wait: w, limits: full} }
	config := func(code int, hint string) want {
		return want{act: ActRetry, wait: exactly(30 * time.Second), reload: code == 401, limits: full,
			notReady: fmt.Sprintf("listener answers %d %s: check %s", code, statusTexts[code], hint)}
	}
	cases := []struct {
		name string
		n    int
		out  Outcome
		want want
	}{
		{"200", 8, httpAnswer(200), ack},
		{"204", 8, httpAnswer(204), ack},
		{"299", 8, httpAnswer(299), ack},
		{"408 seconds", 8, retryAfter(408, "5"), retry(exactly(5 * time.Second))},
		{"429 seconds", 8, retryAfter(429, " 7 "), retry(exactly(7 * time.Second))},
		{"503 seconds", 8, retryAfter(503, "60"), retry(exactly(time.Minute))},
		{"503 IMF-fixdate", 8, retryAfter(503, imf(20*time.Second)), retry(exactly(20 * time.Second))},
		{"429 RFC 850 date", 8, retryAfter(429, now.Add(40*time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT")), retry(exactly(40 * time.Second))},
		{"408 asctime date", 8, retryAfter(408, now.Add(3*time.Second).Format(time.ANSIC)), retry(exactly(3 * time.Second))},
		{"503 absent", 8, retryAfter(503, ""), retry(backoff1)},
		{"429 absent", 8, retryAfter(429, ""), retry(backoff1)},
		{"408 absent", 8, retryAfter(408, ""), retry(backoff1)},
		{"503 unparsable word", 8, retryAfter(503, "soon"), retry(backoff1)},
		{"503 unparsable negative", 8, retryAfter(503, "-5"), retry(backoff1)},
		{"503 unparsable fraction", 8, retryAfter(503, "1.5"), retry(backoff1)},
		{"503 unparsable date", 8, retryAfter(503, "Fri, 31 Foo 2026 12:00:00 GMT"), retry(backoff1)},
		{"503 too large seconds", 8, retryAfter(503, "3600"), retry(exactly(80 * time.Second))},
		{"503 overflowing seconds", 8, retryAfter(503, "99999999999999999999999"), retry(exactly(80 * time.Second))},
		{"429 too large date", 8, retryAfter(429, imf(48*time.Hour)), retry(exactly(80 * time.Second))},
		{"503 too small zero", 8, retryAfter(503, "0"), retry(exactly(time.Second))},
		{"429 too small past date", 8, retryAfter(429, imf(-time.Hour)), retry(exactly(time.Second))},
		{"500", 8, httpAnswer(500), retry(backoff1)},
		{"502", 8, httpAnswer(502), retry(backoff1)},
		{"504", 8, httpAnswer(504), retry(backoff1)},
		{"599", 8, httpAnswer(599), retry(backoff1)},
		{"timeout", 8, Outcome{Kind: OutcomeTimeout}, retry(backoff1)},
		{"refused", 8, Outcome{Kind: OutcomeRefused}, retry(backoff1)},
		{"error", 8, Outcome{Kind: OutcomeError}, retry(backoff1)},
		{"100 is odd: an error", 8, httpAnswer(100), retry(backoff1)},
		{"600 is odd: an error", 8, httpAnswer(600), retry(backoff1)},
		{"413 multi", 8, httpAnswer(413), want{act: ActRetry, wait: exactly(0), limits: [2]int64{4, 400}}},
		{"413 one", 1, httpAnswer(413), want{act: ActDeadLetter, reason: DropTooLarge, limits: full}},
		{"400 multi", 8, httpAnswer(400), want{act: ActRetry, wait: exactly(0), limits: [2]int64{4, 1 << 20}}},
		{"422 multi", 8, httpAnswer(422), want{act: ActRetry, wait: exactly(0), limits: [2]int64{4, 1 << 20}}},
		{"400 one", 1, httpAnswer(400), want{act: ActDeadLetter, reason: DropPoison, limits: full}},
		{"422 one", 1, httpAnswer(422), want{act: ActDeadLetter, reason: DropPoison, limits: full}},
		{"301", 8, httpAnswer(301), config(301, "forward.url")},
		{"302", 8, httpAnswer(302), config(302, "forward.url")},
		{"307", 8, httpAnswer(307), config(307, "forward.url")},
		{"308", 8, httpAnswer(308), config(308, "forward.url")},
		{"401", 8, httpAnswer(401), config(401, "forward.api_key")},
		{"403", 8, httpAnswer(403), config(403, "forward.api_key")},
		{"404", 8, httpAnswer(404), config(404, "forward.url")},
		{"405", 8, httpAnswer(405), config(405, "forward.url")},
		{"410", 8, httpAnswer(410), config(410, "forward.url")},
		{"409 unlisted", 8, httpAnswer(409), config(409, "forward.url")},
		{"418 unlisted", 1, httpAnswer(418), want{act: ActRetry, wait: exactly(30 * time.Second), limits: full, notReady: "listener answers HTTP 418: check forward.url"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPolicy(t, policyTestConfig(), 1)
			d := p.Decide(policyBatch(1, tc.n), tc.out, now)
			w := tc.want
			if d.Action != w.act || d.Reason != w.reason || d.ReloadKey != w.reload {
				t.Fatalf("decision %+v, want action %v reason %q reload %v", d, w.act, w.reason, w.reload)
			}
			checkRetryAt(t, p, d, now, w.act, w.wait)
			if r, b := p.Limits(); int64(r) != w.limits[0] || b != w.limits[1] {
				t.Errorf("limits (%d, %d), want %v", r, b, w.limits)
			}
			if got := p.NotReady(now); !strings.Contains(got, w.notReady) || (w.notReady == "") != (got == "") {
				t.Errorf("NotReady %q, want %q", got, w.notReady)
			}
			if s := p.State(now); s != BreakerClosed {
				t.Errorf("breaker %v after one answer", s)
			}
		})
	}
}

// checkRetryAt checks RetryAt against the window and that SendAt agrees.
func checkRetryAt(t *testing.T, p *Policy, d Decision, now time.Time, act Action, w window) {
	t.Helper()
	if act != ActRetry {
		if !d.RetryAt.IsZero() || !p.SendAt(time.Time{}).IsZero() {
			t.Errorf("RetryAt %v, SendAt %v: want zero (send now)", d.RetryAt, p.SendAt(time.Time{}))
		}
		return
	}
	if wait := d.RetryAt.Sub(now); wait < w.lo || wait > w.hi {
		t.Errorf("retry after %s, want [%s, %s]", wait, w.lo, w.hi)
	}
	if !p.SendAt(time.Time{}).Equal(d.RetryAt) {
		t.Errorf("SendAt %v, RetryAt %v", p.SendAt(time.Time{}), d.RetryAt)
	}
}

func TestOutcomeLabel(t *testing.T) {
	cases := map[string]Outcome{
		"200": httpAnswer(200), "503": retryAfter(503, "1"), "413": httpAnswer(413),
		"timeout": {Kind: OutcomeTimeout}, "refused": {Kind: OutcomeRefused}, "error": {Kind: OutcomeError},
	}
	for want, o := range cases {
		if got := o.Label(); got != want {
			t.Errorf("Label of %+v = %q, want %q", o, got, want)
		}
	}
}

// A clock stepped back by an hour neither stalls a wait for that hour nor
// shortens it: "retry in 5 s" means 5 s of the host's clock from now.
func TestPolicyClockSteppedBack(t *testing.T) {
	p := newTestPolicy(t, policyTestConfig(), 1)
	p.Decide(policyBatch(1, 2), httpAnswer(200), t0.Add(time.Hour))
	d := p.Decide(policyBatch(3, 2), retryAfter(503, "5"), t0)
	if want := t0.Add(5 * time.Second); !d.RetryAt.Equal(want) || !p.SendAt(time.Time{}).Equal(want) {
		t.Fatalf("RetryAt %v SendAt %v, want %v", d.RetryAt, p.SendAt(time.Time{}), want)
	}
}

func TestPolicyEmptyBatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Decide accepted an empty batch")
		}
	}()
	newTestPolicy(t, policyTestConfig(), 1).Decide(Batch{}, httpAnswer(200), t0)
}

// The clock steps back an hour while the breaker is open and no answer
// comes: SendAt, asked with the host's time, still ends the open period at
// its length of the host's clock, not an hour later.
func TestPolicySendAtAbsorbsAStepBack(t *testing.T) {
	cfg := policyTestConfig()
	p := newTestPolicy(t, cfg, 1)
	now := t0
	for range cfg.Failures {
		p.Decide(policyBatch(1, 1), Outcome{Kind: OutcomeRefused}, now)
	}
	wait := p.SendAt(now).Sub(now)
	if wait <= 0 || wait > cfg.OpenFor {
		t.Fatalf("open for %s, want (0, %s]", wait, cfg.OpenFor)
	}
	back := now.Add(-time.Hour)
	if got := p.SendAt(back).Sub(back); got != wait {
		t.Fatalf("after a step back of an hour: wait %s, want %s", got, wait)
	}
}
