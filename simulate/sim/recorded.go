package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/bitville/apmd/core"
)

// maxRecordingEvents bounds what a replay loads.
const maxRecordingEvents = 1 << 20

// recorded replays a traffic recording made by the daemon's [record]: the
// same connections, split into the same reads, at the same relative times
// (a clock that stepped back in the recording is held, not reversed).
type recorded struct {
	events []chunk
	times  []time.Time
	pos    int
}

// loadRecording reads a whole recording. A recording cut short by a crash
// of the recording daemon replays up to its last complete event.
func loadRecording(data []byte, start time.Time) (*recorded, error) {
	rr, err := core.NewRecordingReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read recording: %w", err)
	}
	r := &recorded{}
	var first, last time.Time
	for len(r.events) < maxRecordingEvents {
		ev, err := rr.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, core.ErrRecordingTruncated) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read recording at offset %d: %w", rr.Offset(), err)
		}
		if first.IsZero() {
			first, last = ev.At, ev.At
		}
		last = later(last, ev.At)
		r.events = append(r.events, chunk{kind: ev.Kind, conn: ev.Conn, data: bytes.Clone(ev.Data)})
		r.times = append(r.times, start.Add(last.Sub(first)))
	}
	if len(r.events) == 0 {
		return nil, errors.New("read recording: no events")
	}
	return r, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (r *recorded) nextAt() (time.Time, bool) {
	if r.pos >= len(r.events) {
		return time.Time{}, false
	}
	return r.times[r.pos], true
}

func (r *recorded) next(*rand.Rand) chunk {
	c := r.events[r.pos]
	r.pos++
	return c
}

func (r *recorded) expect(uint64) (expectation, bool) { return expectation{}, false }

// crashed: the clients of connections open at the crash reconnect and
// write on; their next bytes reach a fresh decoder (see Engine.traffic),
// so the line they were in the middle of is rejected, as it would be.
func (r *recorded) crashed() {}

func (r *recorded) stop() { r.pos = len(r.events) }
