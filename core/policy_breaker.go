package core

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// BreakerState is the circuit breaker's state; the values are the
// breaker_state metric's (DESIGN 4.5).
type BreakerState int

// The breaker's states.
const (
	BreakerClosed   BreakerState = 0 // batches go as soon as SendAt allows
	BreakerOpen     BreakerState = 1 // nothing goes until the open period ends
	BreakerHalfOpen BreakerState = 2 // the open period ended: the next batch is the one probe
)

// String names the state for logs and NotReady.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// Jitter spreads, in permille of the delay: a backoff lies in [d/2, d]
// ("equal jitter": agents that failed together spread out, yet none waits
// longer than BackoffMax), an open period in [3/4 p, p].
const (
	backoffSpread = 500
	openSpread    = 250
)

// State returns the breaker's state at now.
func (p *Policy) State(now time.Time) BreakerState {
	switch {
	case !p.open:
		return BreakerClosed
	case p.seen(now).Before(p.openUntil):
		return BreakerOpen
	}
	return BreakerHalfOpen
}

// failed handles a counted failure: another 5xx, a 1xx or odd code, a
// timeout, a refused connection or another transport error. Closed, it
// backs off until Failures in a row open the breaker; open or half-open, it
// is a failed probe and the open period doubles, up to MaxOpenFor.
func (p *Policy) failed(out Outcome, now time.Time) Decision {
	p.failures++
	p.lastFail = out
	switch {
	case p.open:
		p.openFor = min(2*p.openFor, p.cfg.MaxOpenFor)
	case p.failures >= p.cfg.Failures:
		p.open, p.openFor = true, p.cfg.OpenFor
	default:
		return Decision{Action: ActRetry, RetryAt: now.Add(p.backoff())}
	}
	p.openUntil = now.Add(p.jitter(p.openFor, openSpread))
	return Decision{Action: ActRetry, RetryAt: p.openUntil}
}

// throttled handles 408, 429 and 503: the listener is alive but asks us
// to wait. They do not count toward the breaker. An explicit Retry-After
// is obeyed exactly (clamped to [1 s, MaxOpenFor]); otherwise back off.
func (p *Policy) throttled(out Outcome, now time.Time) Decision {
	d, ok := parseRetryAfter(out.RetryAfter, now)
	if !ok {
		return Decision{Action: ActRetry, RetryAt: now.Add(p.backoff())}
	}
	d = min(max(d, time.Second), p.cfg.MaxOpenFor)
	return Decision{Action: ActRetry, RetryAt: now.Add(d)}
}

// backoff returns the next retry delay: BackoffMin doubled for each retry
// since the last 2xx, capped at BackoffMax, then jittered into [d/2, d].
func (p *Policy) backoff() time.Duration {
	p.retries++
	d := p.cfg.BackoffMin
	for i := 1; i < p.retries && d < p.cfg.BackoffMax; i++ {
		d *= 2 // d ≤ 24 h before doubling: no overflow
	}
	return p.jitter(min(d, p.cfg.BackoffMax), backoffSpread)
}

// jitter shortens d by a random j/1000 of it, j uniform in [0, spread],
// in integer arithmetic so that traces are identical on every platform.
func (p *Policy) jitter(d time.Duration, spread uint64) time.Duration {
	j := time.Duration(p.draw(spread))
	return d - (d/1000*j + d%1000*j/1000)
}

// draw returns a number in [0, n] read from the entropy source (the modulo
// bias of 8 bytes is negligible). A failing source yields 0: no jitter.
func (p *Policy) draw(n uint64) uint64 {
	var b [8]byte
	if _, err := io.ReadFull(p.entropy, b[:]); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:]) % (n + 1)
}

// NotReady returns "" when batches flow, or one plain-text line saying why
// they do not, for /readyz: the breaker is open or half-open, or the
// listener answers with a configuration error. The latest answer wins when
// both hold. A throttling listener or failures below breaker.failures keep
// the daemon ready: records still flow, only slower.
func (p *Policy) NotReady(now time.Time) string {
	now = p.seen(now)
	if p.configErr != nil && (!p.open || p.lastWasConfig) {
		return fmt.Sprintf("listener answers %s: %s", describe(*p.configErr), configHint(p.configErr.Code))
	}
	if !p.open {
		return ""
	}
	why := fmt.Sprintf("after %d consecutive failures (last: %s)", p.failures, describe(p.lastFail))
	if s := p.State(now); s == BreakerOpen {
		return fmt.Sprintf("breaker open %s; next probe in %s", why, p.openUntil.Sub(now).Round(time.Millisecond))
	}
	return fmt.Sprintf("breaker half-open %s; probing the listener", why)
}
