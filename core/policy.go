package core

import (
	"fmt"
	"io"
	"time"
)

// PolicyConfig holds every limit of the delivery policy (DESIGN 4.2). All
// counts are records or answers, all sizes bytes; zero values are invalid.
// Validate names each field by its TOML key.
type PolicyConfig struct {
	BatchRecords int           // forward.batch_records: at most this many records per POST
	BatchBytes   int64         // forward.batch_bytes: at most this many record bytes per POST, before gzip (one larger record still goes alone)
	Failures     int           // breaker.failures: this many consecutive failures open the breaker
	OpenFor      time.Duration // breaker.open_for: the first open period, before jitter
	MaxOpenFor   time.Duration // breaker.max_open_for: the open period doubles on each failed probe up to this; also the upper bound of Retry-After
	BackoffMin   time.Duration // forward.backoff_min: the first retry delay after a failure while closed, before jitter
	BackoffMax   time.Duration // forward.backoff_max: the exponential backoff never exceeds this
	ConfigRetry  time.Duration // forward.config_retry: the retry period while the listener answers with a configuration error
	GrowAfter    int           // forward.grow_after: after this many consecutive 2xx, a limit halved by 413 doubles back towards BatchRecords/BatchBytes
}

// Upper bounds of PolicyConfig. They keep the integer arithmetic of
// backoff and jitter far from overflow and catch unit mistakes (a duration
// written in nanoseconds, a byte count in kilobytes).
const (
	maxPolicyDuration = 24 * time.Hour
	maxBatchRecords   = 1 << 20
	maxBatchBytes     = 1 << 30
	maxBreakerCount   = 1 << 20 // failures and grow_after
)

// DefaultPolicyConfig returns the limits the daemon ships with: batches of
// up to 500 records or 4 MiB, a breaker that opens after 5 failures for
// 30 s (doubling up to 10 min), backoff from 500 ms to 30 s, and a slow
// 60 s retry while the listener reports a configuration error.
func DefaultPolicyConfig() PolicyConfig {
	return PolicyConfig{
		BatchRecords: 500,
		BatchBytes:   4 << 20,
		Failures:     5,
		OpenFor:      30 * time.Second,
		MaxOpenFor:   10 * time.Minute,
		BackoffMin:   500 * time.Millisecond,
		BackoffMax:   30 * time.Second,
		ConfigRetry:  time.Minute,
		GrowAfter:    10,
	}
}

// Validate checks every limit and their relations, naming the first bad
// one by its TOML key. Every error wraps ErrInvalidConfig.
func (c PolicyConfig) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	switch {
	case c.BatchRecords < 1 || c.BatchRecords > maxBatchRecords:
		return bad("forward.batch_records", "must be between 1 and %d, got %d", maxBatchRecords, c.BatchRecords)
	case c.BatchBytes < 1 || c.BatchBytes > maxBatchBytes:
		return bad("forward.batch_bytes", "must be between 1 and %d, got %d", maxBatchBytes, c.BatchBytes)
	case c.Failures < 1 || c.Failures > maxBreakerCount:
		return bad("breaker.failures", "must be between 1 and %d, got %d", maxBreakerCount, c.Failures)
	case c.GrowAfter < 1 || c.GrowAfter > maxBreakerCount:
		return bad("forward.grow_after", "must be between 1 and %d, got %d", maxBreakerCount, c.GrowAfter)
	}
	return c.validateDurations(bad)
}

func (c PolicyConfig) validateDurations(bad func(key, format string, args ...any) error) error {
	inRange := func(d, lo time.Duration) bool { return d >= lo && d <= maxPolicyDuration }
	switch {
	case !inRange(c.OpenFor, 1):
		return bad("breaker.open_for", "must be positive and at most %s, got %s", maxPolicyDuration, c.OpenFor)
	case !inRange(c.MaxOpenFor, max(c.OpenFor, time.Second)):
		return bad("breaker.max_open_for", "must be at least breaker.open_for (%s) and 1s, and at most %s, got %s", c.OpenFor, maxPolicyDuration, c.MaxOpenFor)
	case !inRange(c.BackoffMin, 1):
		return bad("forward.backoff_min", "must be positive and at most %s, got %s", maxPolicyDuration, c.BackoffMin)
	case !inRange(c.BackoffMax, c.BackoffMin):
		return bad("forward.backoff_max", "must be at least forward.backoff_min (%s) and at most %s, got %s", c.BackoffMin, maxPolicyDuration, c.BackoffMax)
	case !inRange(c.ConfigRetry, 1):
		return bad("forward.config_retry", "must be positive and at most %s, got %s", maxPolicyDuration, c.ConfigRetry)
	}
	return nil
}

// Policy decides, after each listener answer, what the host does next:
// ack, retry (when, and with which batch limits) or dead-letter. The host
// only does the HTTP. Like Buffer it is driven by one owner, one call at a
// time, and never reads a clock: times earlier than the latest seen are
// clamped to it.
//
// Invariants, after every call:
//
//	1 ≤ Limits() ≤ (BatchRecords, BatchBytes)
//	breaker open ⇒ failures ≥ Failures and SendAt() ≥ end of the open period
//	OpenFor ≤ open period ≤ MaxOpenFor (before jitter)
type Policy struct {
	cfg     PolicyConfig
	entropy io.Reader
	clock   clock     // the host's times, never going back
	sendAt  time.Time // do not send before this; zero: now

	failures  int           // consecutive counted failures since the last 2xx
	retries   int           // consecutive backoff retries since the last 2xx: the backoff exponent
	open      bool          // breaker open, or half-open once openUntil has passed
	openFor   time.Duration // the current open period, before jitter
	openUntil time.Time
	lastFail  Outcome // the latest counted failure, for NotReady

	maxRecords int   // adaptive record limit, halved by 413
	maxBytes   int64 // adaptive byte limit, halved by 413
	successes  int   // consecutive 2xx since the adaptive limits last changed

	splitRecords int    // poison split limit; 0: no split
	splitThrough uint64 // the split applies while batches start at or below this seq

	configErr     *Outcome // the latest configuration error, until a 2xx
	lastWasConfig bool     // the latest answer was a configuration error
}

// NewPolicy returns a policy with a closed breaker and the full batch
// limits. entropy is read for jitter only: the daemon passes
// crypto/rand.Reader, the simulator a seeded source, so that a trace is
// reproducible. If entropy fails, delays go unjittered (their maximum).
func NewPolicy(cfg PolicyConfig, entropy io.Reader) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if entropy == nil {
		return nil, fmt.Errorf("%w: policy entropy must be set (crypto/rand.Reader in a host)", ErrInvalidConfig)
	}
	return &Policy{cfg: cfg, entropy: entropy, openFor: cfg.OpenFor,
		maxRecords: cfg.BatchRecords, maxBytes: cfg.BatchBytes}, nil
}

// Limits returns the maxRecords and maxBytes to pass to Buffer.Next for the
// next batch: the configured limits, lowered by 413 answers and, while a
// poisoned range is being split, by the split.
func (p *Policy) Limits() (maxRecords int, maxBytes int64) {
	maxRecords = p.maxRecords
	if p.splitRecords > 0 {
		maxRecords = min(maxRecords, p.splitRecords)
	}
	return maxRecords, p.maxBytes
}

// SendAt returns the earliest time the next batch may be sent: after a
// backoff, a Retry-After, the breaker's open period or a configuration
// error's retry period. The zero time means now. Once the breaker's open
// period has passed, the next batch is its one probe.
//
// now is the host's current time: a step back of the host's clock since the
// last answer is absorbed first, so the wait is neither stalled nor cut.
// The zero time means no new reading.
func (p *Policy) SendAt(now time.Time) time.Time {
	if !now.IsZero() {
		p.clamp(now)
	}
	if p.open && p.openUntil.After(p.sendAt) {
		return p.clock.toHost(p.openUntil)
	}
	return p.clock.toHost(p.sendAt)
}

// Decide classifies the answer to batch bt (the batch Next handed out, not
// empty) and updates the breaker, backoff and limits. The host then
// resolves the batch as the Decision says before calling Next again.
func (p *Policy) Decide(bt Batch, out Outcome, now time.Time) Decision {
	if len(bt.Records) == 0 {
		panic("core: Policy.Decide: empty batch") // a programmer error: only batches that were sent have answers
	}
	now = p.clamp(now)
	if p.splitRecords > 0 && bt.First() > p.splitThrough {
		p.splitRecords = 0 // past the poisoned range: back to full batches
	}
	class := classify(out)
	d := p.decide(class, bt, out, now)
	p.lastWasConfig = class == classConfig
	if d.Action != ActRetry && bt.Last() >= p.splitThrough {
		p.splitRecords = 0 // the poisoned range is resolved
	}
	p.sendAt = d.RetryAt
	d.RetryAt = p.clock.toHost(d.RetryAt)
	return d
}

func (p *Policy) decide(class answerClass, bt Batch, out Outcome, now time.Time) Decision {
	switch class {
	case classOK:
		return p.delivered()
	case classThrottle:
		return p.throttled(out, now)
	case classTooLarge:
		return p.tooLarge(bt, now)
	case classPoison:
		return p.poisoned(bt, now)
	case classConfig:
		return p.misconfigured(out, now)
	}
	return p.failed(out, now)
}

// clamp converts the host's time (see clock): a clock stepped back must
// not stall a wait nor shorten it.
func (p *Policy) clamp(now time.Time) time.Time { return p.clock.advance(now) }

// seen is clamp for queries: it does not move the clock.
func (p *Policy) seen(now time.Time) time.Time { return p.clock.peek(now) }

// delivered handles a 2xx: the listener works, so every failure state is
// cleared, and the adaptive limits move back towards the configured ones.
func (p *Policy) delivered() Decision {
	p.failures, p.retries = 0, 0
	p.open, p.openFor = false, p.cfg.OpenFor
	p.configErr = nil
	if p.maxRecords < p.cfg.BatchRecords || p.maxBytes < p.cfg.BatchBytes {
		p.successes++
		if p.successes >= p.cfg.GrowAfter {
			p.successes = 0
			p.maxRecords = min(p.cfg.BatchRecords, p.maxRecords*2)
			p.maxBytes = min(p.cfg.BatchBytes, p.maxBytes*2)
		}
	}
	return Decision{Action: ActAck}
}

// tooLarge handles a 413. The limits are halved from the batch that was
// refused (not from the limit, which a short queue may not have reached),
// so every retry is strictly smaller and a lone record is reached in
// log2(n) steps.
func (p *Policy) tooLarge(bt Batch, now time.Time) Decision {
	if len(bt.Records) == 1 {
		return Decision{Action: ActDeadLetter, Reason: DropTooLarge}
	}
	p.maxRecords = min(p.maxRecords, max(1, len(bt.Records)/2))
	p.maxBytes = min(p.maxBytes, max(1, bt.Bytes/2))
	p.successes = 0
	return Decision{Action: ActRetry, RetryAt: now}
}

// poisoned handles a 400 or 422: some record in the batch is rejected.
// The batch is bisected: the next batches hold at most half of it until
// its last record is resolved, so only the rejected record is dead-lettered.
func (p *Policy) poisoned(bt Batch, now time.Time) Decision {
	n := len(bt.Records)
	if n == 1 {
		return Decision{Action: ActDeadLetter, Reason: DropPoison}
	}
	p.splitRecords, p.splitThrough = (n+1)/2, bt.Last()
	return Decision{Action: ActRetry, RetryAt: now}
}

// misconfigured handles a redirect, 401, 403, 404, 405, 410 or another
// 4xx this policy does not understand: nothing is dropped, the host is not
// ready, and it retries slowly until someone fixes the configuration.
func (p *Policy) misconfigured(out Outcome, now time.Time) Decision {
	p.configErr = &out
	return Decision{Action: ActRetry, RetryAt: now.Add(p.cfg.ConfigRetry), ReloadKey: out.Code == 401}
}
