package core

import "time"

// clock maps the host's wall times onto a time that never goes back and
// never stands still (DESIGN 3). A step back of the host's clock is
// absorbed into skew, so that afterwards time goes on from the latest value
// seen, at the host's pace: ages never turn negative and timers (age
// spills, retry waits) keep running. Merely clamping to the latest value
// would freeze them for as long as the step. A step forward cannot be told
// from elapsed time and is taken as it is. (A host whose times carry Go's
// monotonic reading never steps back, and skew stays 0.)
type clock struct {
	last time.Time     // latest time handed out
	skew time.Duration // added to the host's times
}

// advance converts a host time and moves the clock to it.
func (c *clock) advance(host time.Time) time.Time {
	t := host.Add(c.skew)
	if t.Before(c.last) {
		c.skew += c.last.Sub(t)
		t = c.last
	}
	c.last = t
	return t
}

// peek converts a host time without moving the clock, for queries.
func (c *clock) peek(host time.Time) time.Time {
	if t := host.Add(c.skew); !t.Before(c.last) {
		return t
	}
	return c.last
}

// toHost converts a time of this clock back to the host's, for deadlines
// the host compares with its own clock. The zero time stays zero.
func (c *clock) toHost(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(-c.skew)
}
