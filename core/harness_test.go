package core

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// t0 is the simulated start of every test; tests advance time by hand.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// testConfig is small enough to reason about in comments: 10 records or
// 64 KiB in memory, segments of 1 KiB.
func testConfig() Config {
	c := DefaultConfig()
	c.MemoryRecords = 10
	c.MemoryBytes = 64 << 10
	c.MaxRecordBytes = 1024
	c.SegmentBytes = 1024
	c.DiskBytes = 1 << 20
	c.QuarantineBytes = 1 << 20
	c.DeadLetterBytes = 1 << 20
	c.MinFreeBytes = 0
	c.SeqBlock = 100
	c.Entropy = rand.NewChaCha8([32]byte{1})
	return c
}

// harness drives a Buffer and asserts the conservation identity after
// every operation, not only at the end.
type harness struct {
	t   testing.TB
	fs  afero.Fs
	cfg Config
	b   *Buffer
	rep Report
	now time.Time
}

func newHarness(t testing.TB, fs afero.Fs, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, fs: fs, cfg: cfg, now: t0}
	h.reopen()
	return h
}

func (h *harness) reopen() {
	h.t.Helper()
	b, rep, err := Open(h.fs, "/spool", h.cfg, h.now)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.b, h.rep = b, rep
	h.check("Open")
}

func (h *harness) check(op string) {
	h.t.Helper()
	if err := h.b.Stats(h.now).CheckConservation(); err != nil {
		h.t.Fatalf("after %s: %v", op, err)
	}
}

func (h *harness) stats() Stats { return h.b.Stats(h.now) }

func record(i, size int) []byte {
	s := fmt.Sprintf(`{"correlation_id":"r%06d","pad":"`, i)
	for len(s) < size-2 {
		s += "x"
	}
	return []byte(s + `"}`)
}

// add adds n records of size bytes numbered from first, advancing time by
// step after each.
func (h *harness) add(first, n, size int, step time.Duration) {
	h.t.Helper()
	for i := first; i < first+n; i++ {
		if err := h.b.Add(record(i, size), h.now); err != nil {
			h.t.Fatalf("Add %d: %v", i, err)
		}
		h.check("Add")
		h.now = h.now.Add(step)
	}
}

func (h *harness) tick(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	if err := h.b.Tick(h.now); err != nil {
		h.t.Fatalf("Tick: %v", err)
	}
	h.check("Tick")
}

func (h *harness) next(maxRecords int, maxBytes int64) Batch {
	h.t.Helper()
	bt, err := h.b.Next(maxRecords, maxBytes, h.now)
	if err != nil {
		h.t.Fatalf("Next: %v", err)
	}
	h.check("Next")
	return bt
}

func (h *harness) ack() {
	h.t.Helper()
	if err := h.b.Ack(h.now); err != nil {
		h.t.Fatalf("Ack: %v", err)
	}
	h.check("Ack")
}

// drain acknowledges everything queued, batch by batch, and returns the
// records in the order they were handed out.
func (h *harness) drain(maxRecords int) []Record {
	h.t.Helper()
	var out []Record
	for range 1_000_000 {
		bt := h.next(maxRecords, 1<<20)
		if len(bt.Records) == 0 {
			return out
		}
		for _, r := range bt.Records {
			out = append(out, Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
		}
		h.ack()
	}
	h.t.Fatal("drain did not end")
	return nil
}

func (h *harness) shutdown() {
	h.t.Helper()
	if err := h.b.Shutdown(h.now); err != nil {
		h.t.Fatalf("Shutdown: %v", err)
	}
}

// segFiles lists the segment files in the spool.
func segFiles(t testing.TB, fs afero.Fs) []string {
	t.Helper()
	infos, err := afero.ReadDir(fs, "/spool")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fi := range infos {
		if isSegName(fi.Name()) {
			out = append(out, fi.Name())
		}
	}
	return out
}
