package wasm

import (
	"math/rand/v2"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// DefaultStart is the wall-clock instant a deterministic run starts at when
// Options.Start is zero. It is fixed so traces do not depend on the host date.
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// readTick is how far the virtual clock moves on every reading. A clock that
// never moves on its own would hang guests that spin until time passes; a fixed
// step keeps them finite and still deterministic.
const readTick = time.Microsecond

// virtualClock is the deterministic clock: monotonic nanoseconds since Start,
// advanced by readTick per reading and by the full duration of every sleep,
// so a guest's time.Sleep returns at once but observes the time having passed.
// wazero calls it from the single goroutine running the guest, so it needs no
// lock.
type virtualClock struct {
	start   time.Time
	elapsed int64
}

// nanotime implements sys.Nanotime.
func (c *virtualClock) nanotime() int64 {
	c.elapsed += int64(readTick)
	return c.elapsed
}

// walltime implements sys.Walltime: Start plus the same elapsed time as the
// monotonic clock, so wall and monotonic readings never disagree.
func (c *virtualClock) walltime() (int64, int32) {
	t := c.start.Add(time.Duration(c.nanotime()))
	return t.Unix(), int32(t.Nanosecond())
}

// nanosleep implements sys.Nanosleep by advancing virtual time instead of
// blocking the host.
func (c *virtualClock) nanosleep(ns int64) {
	if ns > 0 {
		c.elapsed += ns
	}
}

// resolution is the clock resolution reported to the guest.
const resolution = sys.ClockResolution(readTick)

// seededReader is a deterministic random source for the guest.
type seededReader struct{ r *rand.ChaCha8 }

// newSeededReader returns a reader whose stream depends only on seed.
func newSeededReader(seed uint64) *seededReader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return &seededReader{r: rand.NewChaCha8(key)}
}

// Read fills p from the ChaCha8 stream; it never fails.
func (s *seededReader) Read(p []byte) (int, error) {
	return s.r.Read(p)
}
