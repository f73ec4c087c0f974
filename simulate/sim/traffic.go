package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/bitville/apmd/core"
)

// chunk is one traffic event: a connection opened, one socket read's bytes,
// or a close.
type chunk struct {
	kind core.RecEventKind
	conn uint64
	data []byte
}

// expectation is what the framing should say about one line a generator
// wrote: a record with these bytes, or a rejection for this reason.
type expectation struct {
	start, end int64 // the line's bytes in the connection's stream, '\n' excluded
	reject     core.RejectReason
	body       []byte
}

// source produces traffic. The synthetic generator knows what each line
// should become; a recording does not.
type source interface {
	// nextAt is when the next event happens; false when there is none.
	nextAt() (time.Time, bool)
	// next returns that event.
	next(rng *rand.Rand) chunk
	// expect pops what the next line completed on conn should be.
	expect(conn uint64) (expectation, bool)
	// crashed says the daemon died: every open connection is gone.
	crashed()
	// stop ends the traffic (the final drain).
	stop()
}

// Traffic is the synthetic generator's profile. Shares are in permille.
type Traffic struct {
	MeanGap     time.Duration // mean time between socket reads
	BurstEvery  time.Duration // > 0: a burst starts this often
	BurstLen    time.Duration // and lasts this long
	BurstFactor int           // reads come this many times as often in a burst
	MaxConns    int           // connections open at once

	SizeMin, SizeMax int // typical record bytes, uniform
	LargePermille    int // records of up to LargeMax bytes
	LargeMax         int
	GarbagePermille  int // invalid JSON, non-objects, blank lines
	GluePermille     int // a record cut short and glued to the next
	OversizePermille int // lines over max_record_bytes
	PoisonPermille   int // records the listener rejects (400)
	MidClosePermille int // a connection closed in the middle of a record
	CRLFPermille     int // lines ended by "\r\n"
}

// DefaultTraffic is a modest, varied load: a read every 400 ms on average,
// bursts of 20x for 5 s every 2 minutes.
func DefaultTraffic() Traffic {
	return Traffic{
		MeanGap: 400 * time.Millisecond, BurstEvery: 2 * time.Minute, BurstLen: 5 * time.Second, BurstFactor: 20,
		MaxConns: 6, SizeMin: 120, SizeMax: 900, LargePermille: 20, LargeMax: 12 << 10,
		GarbagePermille: 20, GluePermille: 10, OversizePermille: 3, MidClosePermille: 10, CRLFPermille: 20,
	}
}

// synthConn is one client connection of the generator.
type synthConn struct {
	id      uint64
	pending []byte // written by the client, not yet read by the daemon
	sent    int64  // bytes the daemon has read
	written int64  // bytes the client has written
	expects []expectation
	closing bool // close once pending is read (or at once, mid-record)
}

// synth is the synthetic traffic generator.
type synth struct {
	p        Traffic
	maxLine  int // max_record_bytes
	tag      string
	epoch    time.Time
	at       time.Time
	stopped  bool
	conns    []*synthConn
	byID     map[uint64]*synthConn
	nextConn uint64
	nextRec  int
	poison   map[string]bool // shared with the ledger

	// plantMapOrder picks connections by iterating byID: the planted
	// nondeterminism that the determinism test must see in the digest.
	plantMapOrder bool
}

func newSynth(p Traffic, maxLine int, tag string, start time.Time, poison map[string]bool) *synth {
	return &synth{p: p, maxLine: maxLine, tag: tag, epoch: start, at: start, byID: map[uint64]*synthConn{}, poison: poison}
}

func (s *synth) nextAt() (time.Time, bool) { return s.at, !s.stopped }

func (s *synth) stop() { s.stopped = true }

// crashed forgets every connection: the daemon's death closed them, and
// what their clients had not yet written is never sent.
func (s *synth) crashed() {
	for _, c := range s.conns {
		delete(s.byID, c.id)
	}
	s.conns = s.conns[:0]
}

func (s *synth) expect(conn uint64) (expectation, bool) {
	c := s.byID[conn]
	if c == nil || len(c.expects) == 0 {
		return expectation{}, false
	}
	e := c.expects[0]
	c.expects = c.expects[1:]
	return e, true
}

// next produces one event and schedules the one after it.
func (s *synth) next(rng *rand.Rand) chunk {
	s.at = s.at.Add(s.gap(rng))
	if len(s.conns) == 0 || (len(s.conns) < s.p.MaxConns && rng.IntN(8) == 0) {
		s.nextConn++
		c := &synthConn{id: s.nextConn}
		s.conns = append(s.conns, c)
		s.byID[c.id] = c
		return chunk{kind: core.RecOpen, conn: c.id}
	}
	c := s.pick(rng)
	if c.closing || (len(c.pending) == 0 && rng.IntN(25) == 0) {
		return s.close(c)
	}
	if len(c.pending) == 0 {
		s.write(c, rng)
	}
	n := len(c.pending)
	if rng.IntN(5) < 2 {
		n = 1 + rng.IntN(n)
	}
	data := bytes.Clone(c.pending[:n])
	c.pending = c.pending[n:]
	c.sent += int64(n)
	if len(c.pending) > 0 && rng.IntN(1000) < s.p.MidClosePermille {
		c.closing = true // the client dies mid-record: the rest never comes
		s.cutAt(c)
	}
	return chunk{kind: core.RecData, conn: c.id, data: data}
}

// pick chooses the connection that the next read comes from.
func (s *synth) pick(rng *rand.Rand) *synthConn {
	if s.plantMapOrder {
		for _, c := range s.byID {
			return c // map order: deliberately nondeterministic
		}
	}
	return s.conns[rng.IntN(len(s.conns))]
}

func (s *synth) close(c *synthConn) chunk {
	for i, x := range s.conns {
		if x == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	return chunk{kind: core.RecClose, conn: c.id}
}

// cutAt rewrites the expectations of a connection that dies after sent
// bytes: the line in progress becomes truncated (or oversized, if it was
// already past the cap), and lines never sent expect nothing.
func (s *synth) cutAt(c *synthConn) {
	kept := c.expects[:0]
	for _, e := range c.expects {
		switch {
		case c.sent > e.end: // its newline was read: the line is complete
			kept = append(kept, e)
		case e.start < c.sent:
			e.body, e.reject = nil, core.RejectTruncated
			if c.sent-e.start > int64(s.maxLine) {
				e.reject = core.RejectOversized
			}
			kept = append(kept, e)
		}
	}
	c.expects = kept
	c.pending = nil
}

// gap is the time to the next read: uniform in [0, 2*MeanGap], divided by
// BurstFactor inside a burst. Integer arithmetic only.
func (s *synth) gap(rng *rand.Rand) time.Duration {
	g := time.Duration(rng.Int64N(int64(2*s.p.MeanGap) + 1))
	if s.p.BurstEvery > 0 && s.p.BurstFactor > 1 && s.at.Sub(s.epoch)%s.p.BurstEvery < s.p.BurstLen {
		g /= time.Duration(s.p.BurstFactor)
	}
	return max(g, time.Microsecond)
}

// write has the client of c write one to three lines.
func (s *synth) write(c *synthConn, rng *rand.Rand) {
	for range 1 + rng.IntN(3) {
		line, e := s.line(rng)
		e.start = c.written
		e.end = c.written + int64(len(line))
		blank := len(line) == 0
		eol := "\n"
		if !blank && e.reject == "" && rng.IntN(1000) < s.p.CRLFPermille {
			eol = "\r\n" // the '\r' stays part of the record: JSON allows it
			e.body = append(bytes.Clone(e.body), '\r')
			e.end++
		}
		c.pending = append(c.pending, line...)
		c.pending = append(c.pending, eol...)
		c.written = e.end + 1
		if !blank {
			c.expects = append(c.expects, e)
		}
	}
}

// line makes one line and what the framing should say about it.
func (s *synth) line(rng *rand.Rand) ([]byte, expectation) {
	switch r := rng.IntN(1000); {
	case r < s.p.GarbagePermille:
		return garbage(rng)
	case r < s.p.GarbagePermille+s.p.GluePermille:
		a, b := s.record(rng, false), s.record(rng, false)
		cut := 1 + rng.IntN(len(a)-1)
		line := append(bytes.Clone(a[:cut]), b...)
		return line, s.verdict(line, core.RejectInvalidJSON)
	case r < s.p.GarbagePermille+s.p.GluePermille+s.p.OversizePermille:
		line := []byte(`{"oversized":"` + strings.Repeat("o", s.maxLine) + `"}`)
		return line, expectation{reject: core.RejectOversized}
	}
	rec := s.record(rng, rng.IntN(1000) < s.p.PoisonPermille)
	return rec, s.verdict(rec, "")
}

// verdict is the expectation for a line, oversized if past the cap.
func (s *synth) verdict(line []byte, reject core.RejectReason) expectation {
	if len(line) > s.maxLine {
		return expectation{reject: core.RejectOversized}
	}
	if reject != "" {
		return expectation{reject: reject}
	}
	return expectation{body: line}
}

// record makes a JSON object, unique in the run, of a drawn size.
func (s *synth) record(rng *rand.Rand, poison bool) []byte {
	s.nextRec++
	size := s.p.SizeMin + rng.IntN(s.p.SizeMax-s.p.SizeMin+1)
	if rng.IntN(1000) < s.p.LargePermille {
		size = s.p.SizeMax + rng.IntN(max(s.p.LargeMax-s.p.SizeMax, 1))
	}
	head := fmt.Sprintf(`{"correlation_id":"%s-%d","duration_us":%d`, s.tag, s.nextRec, rng.IntN(1_000_000))
	if poison {
		head += `,"poison":true`
	}
	pad := max(size-len(head)-10, 0)
	rec := []byte(head + `,"pad":"` + strings.Repeat("p", pad) + `"}`)
	if poison {
		s.poison[string(rec)] = true
	}
	return rec
}

// garbage is a line that is not a JSON object, or a blank line.
func garbage(rng *rand.Rand) ([]byte, expectation) {
	switch rng.IntN(7) {
	case 0:
		return []byte("GET / HTTP/1.1"), expectation{reject: core.RejectInvalidJSON}
	case 1:
		return []byte(`[1,2,3]`), expectation{reject: core.RejectNotObject}
	case 2:
		return []byte(`42`), expectation{reject: core.RejectNotObject}
	case 3:
		return []byte(`"just a string"`), expectation{reject: core.RejectNotObject}
	case 4:
		return []byte(`{"unterminated": [1, 2`), expectation{reject: core.RejectInvalidJSON}
	case 5:
		return []byte(`{"bad": tru}`), expectation{reject: core.RejectInvalidJSON}
	}
	return []byte(""), expectation{} // a blank line: ignored, no verdict
}
