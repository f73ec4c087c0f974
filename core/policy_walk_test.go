package core

import (
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// fakeListener answers 400 to any batch holding a poisoned sequence
// number, 413 to a batch of more than maxRecords records (0: no limit), and
// 200 otherwise.
type fakeListener struct {
	poison     []uint64
	maxRecords int
}

func (l fakeListener) answer(bt Batch) Outcome {
	if l.maxRecords > 0 && len(bt.Records) > l.maxRecords {
		return httpAnswer(413)
	}
	for _, r := range bt.Records {
		if slices.Contains(l.poison, r.Seq) {
			return httpAnswer(400)
		}
	}
	return httpAnswer(200)
}

// walkResult is what a drive loop saw.
type walkResult struct {
	delivered, dead []uint64
	requests        int
}

// walk drives a real Buffer holding records 1..n (100 bytes each, so with
// testConfig most sit in 1 KiB segments on disk) through a Policy against
// the listener, until the buffer is empty, as the shell's loop would.
func walk(t *testing.T, n int, l fakeListener) (walkResult, *harness, *Policy) {
	t.Helper()
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(1, n, 100, time.Millisecond)
	p := newTestPolicy(t, policyTestConfig(), 1)
	var res walkResult
	for ; res.requests < 10*n; res.requests++ {
		if at := p.SendAt(time.Time{}); at.After(h.now) {
			h.now = at
		}
		bt := h.next(p.Limits())
		if len(bt.Records) == 0 {
			return res, h, p
		}
		d := p.Decide(bt, l.answer(bt), h.now)
		res.resolve(t, h, bt, d)
	}
	t.Fatalf("no end after %d requests", res.requests)
	return res, h, p
}

func (res *walkResult) resolve(t *testing.T, h *harness, bt Batch, d Decision) {
	t.Helper()
	var err error
	switch d.Action {
	case ActAck:
		err = h.b.Ack(h.now)
		for _, r := range bt.Records {
			res.delivered = append(res.delivered, r.Seq)
		}
	case ActRetry:
		err = h.b.Nack(h.now)
	case ActDeadLetter:
		err = h.b.DeadLetter(d.Reason, h.now)
		res.dead = append(res.dead, bt.First())
	}
	if err != nil {
		t.Fatalf("%v of %d-%d: %v", d.Action, bt.First(), bt.Last(), err)
	}
	h.check(d.Action.String())
}

// 16 records, the listener rejects some: bisection dead-letters exactly
// the rejected records and delivers every other one, in order. With one
// poison record at seq 11 it takes 9 requests:
//
//	1-16 400, 1-8 200, 9-16 400, 9-12 400, 9-10 200, 11-12 400, 11 400 (dead),
//	12 200 (the split ends), 13-16 200.
func TestPolicyPoisonSplitWalk(t *testing.T) {
	cases := []struct {
		name     string
		listener fakeListener
		requests int // 0: only logged
	}{
		{"seq 11", fakeListener{poison: []uint64{11}}, 9},
		{"seq 1", fakeListener{poison: []uint64{1}}, 7},
		{"seq 16", fakeListener{poison: []uint64{16}}, 9},
		{"seqs 3 and 11", fakeListener{poison: []uint64{3, 11}}, 0},
		{"seqs 8 and 9", fakeListener{poison: []uint64{8, 9}}, 0},
		{"seq 11, listener takes 5 records at most", fakeListener{poison: []uint64{11}, maxRecords: 5}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, h, p := walk(t, 16, tc.listener)
			t.Logf("%d requests; delivered %v; dead-lettered %v", res.requests, res.delivered, res.dead)
			checkWalk(t, res, h, tc.listener.poison)
			if tc.requests != 0 && res.requests != tc.requests {
				t.Errorf("%d requests, want %d", res.requests, tc.requests)
			}
			if r, _ := p.Limits(); tc.listener.maxRecords == 0 && r != 16 {
				t.Errorf("limit %d records after the walk: the split was not reset", r)
			}
		})
	}
}

func checkWalk(t *testing.T, res walkResult, h *harness, poison []uint64) {
	t.Helper()
	var want []uint64
	for seq := uint64(1); seq <= 16; seq++ {
		if !slices.Contains(poison, seq) {
			want = append(want, seq)
		}
	}
	if !slices.Equal(res.delivered, want) {
		t.Errorf("delivered %v, want %v", res.delivered, want)
	}
	if !slices.Equal(res.dead, poison) {
		t.Errorf("dead-lettered %v, want %v", res.dead, poison)
	}
	s := h.stats()
	if s.Delivered != uint64(len(want)) || s.Dropped[DropPoison] != uint64(len(poison)) || s.DeadLetterFiles != len(poison) {
		t.Errorf("stats: delivered %d, poison %d, dead-letter files %d", s.Delivered, s.Dropped[DropPoison], s.DeadLetterFiles)
	}
}
