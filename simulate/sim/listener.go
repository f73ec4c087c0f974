package sim

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/bitville/apmd/core"
)

// requestTimeout is the forwarder's whole-request timeout (forward.timeout).
const requestTimeout = 10 * time.Second

// Listener is the simulated central listener. Its behaviours combine; the
// zero value is a healthy listener that answers 200 within milliseconds.
type Listener struct {
	Down             bool          // refuses connections
	FlapPeriod       time.Duration // > 0: alternately up and down for this long
	SlowMax          time.Duration // answers take up to this long (past requestTimeout: a timeout, though the batch was processed)
	ThrottlePermille int           // this share of answers is 429 or 503 with a Retry-After
	ErrorPermille    int           // this share is a 500, 502, reset or timeout
	MaxBatchBytes    int64         // > 0: batches with more record bytes get 413
	AuthBroken       bool          // 401 until the key is reloaded after KeyFixedAt
	KeyFixedAt       time.Time     // when an operator fixed the key file
	RedirectUntil    time.Time     // 302 until then
}

// answer is the listener's reply to one POST.
type answer struct {
	out       core.Outcome
	latency   time.Duration // until the host sees the answer
	processed bool          // the listener kept the batch (a 2xx, seen or timed out)
}

// answerBatch decides the listener's reply to bt at virtual time now.
// hasPoison reports whether the batch holds a record the listener rejects.
func (l *Listener) answerBatch(bt core.Batch, hasPoison bool, now, epoch time.Time, rng *rand.Rand) answer {
	refused := answer{out: core.Outcome{Kind: core.OutcomeRefused}, latency: time.Millisecond}
	httpAns := func(code int, retryAfter string) answer {
		return answer{out: core.Outcome{Kind: core.OutcomeHTTP, Code: code, RetryAfter: retryAfter}, latency: l.latency(rng)}
	}
	switch {
	case l.Down:
		return refused
	case l.FlapPeriod > 0 && (now.Sub(epoch)/l.FlapPeriod)%2 == 1:
		return refused
	case now.Before(l.RedirectUntil):
		return httpAns(302, "")
	case l.AuthBroken:
		return httpAns(401, "")
	case rng.IntN(1000) < l.ThrottlePermille:
		return httpAns([]int{429, 503}[rng.IntN(2)], retryAfter(now, rng))
	case l.MaxBatchBytes > 0 && bt.Bytes > l.MaxBatchBytes:
		return httpAns(413, "")
	case hasPoison:
		return httpAns(400, "")
	case rng.IntN(1000) < l.ErrorPermille:
		return l.failure(rng)
	}
	a := httpAns(200, "")
	a.processed = true
	if a.latency > requestTimeout {
		a.out, a.latency = core.Outcome{Kind: core.OutcomeTimeout}, requestTimeout
	}
	return a
}

func (l *Listener) latency(rng *rand.Rand) time.Duration {
	d := time.Duration(5+rng.IntN(45)) * time.Millisecond
	if l.SlowMax > 0 {
		d += time.Duration(rng.Int64N(int64(l.SlowMax)))
	}
	return d
}

// failure is a counted failure: a 5xx, a reset connection or a timeout.
func (l *Listener) failure(rng *rand.Rand) answer {
	switch rng.IntN(4) {
	case 0:
		return answer{out: core.Outcome{Kind: core.OutcomeHTTP, Code: 500}, latency: 20 * time.Millisecond}
	case 1:
		return answer{out: core.Outcome{Kind: core.OutcomeHTTP, Code: 502}, latency: 20 * time.Millisecond}
	case 2:
		return answer{out: core.Outcome{Kind: core.OutcomeError}, latency: 5 * time.Millisecond}
	}
	return answer{out: core.Outcome{Kind: core.OutcomeTimeout}, latency: requestTimeout}
}

// retryAfter is a Retry-After in either form: delta-seconds, or an HTTP
// date by the listener's own (correct) clock.
func retryAfter(now time.Time, rng *rand.Rand) string {
	secs := 1 + rng.IntN(120)
	if rng.IntN(2) == 0 {
		return strconv.Itoa(secs)
	}
	return now.Add(time.Duration(secs) * time.Second).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
}
