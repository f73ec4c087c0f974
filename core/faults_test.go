package core

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/bitville/apmd/fsadapter"
	"github.com/spf13/afero"
)

// A spill that fails with ENOSPC keeps its records in memory and is
// retried after spill_retry; nothing is lost while memory has room.
func TestFailedSpillIsRetried(t *testing.T) {
	fault := fsadapter.NewFaultFS(afero.NewMemMapFs())
	h := newHarness(t, fault, testConfig())
	fault.AddRule(fsadapter.Rule{Kind: fsadapter.OpWrite, Err: syscall.ENOSPC, Times: 1})
	h.add(0, 10, 100, 0) // the 10th Add spills, and the write fails
	s := h.stats()
	if s.SpillFailures != 1 || s.MemoryRecords != 10 || s.DiskRecords != 0 {
		t.Fatalf("failures %d memory %d disk %d", s.SpillFailures, s.MemoryRecords, s.DiskRecords)
	}
	errs, _ := h.b.TakeIOErrors()
	if len(errs) != 1 || !errors.Is(errs[0], syscall.ENOSPC) {
		t.Fatalf("I/O errors %v, want one ENOSPC", errs)
	}
	if ok, _ := afero.Exists(fault, "/spool/"+segName(1)+tmpSuffix); ok {
		t.Fatal("the failed spill left its temp file")
	}
	h.tick(999 * time.Millisecond) // spill_retry is 1 s
	if h.stats().DiskRecords != 0 {
		t.Fatal("retried before spill_retry")
	}
	h.tick(time.Millisecond)
	if s := h.stats(); s.DiskRecords != 10 || s.MemoryRecords != 0 {
		t.Fatalf("retry: disk %d memory %d", s.DiskRecords, s.MemoryRecords)
	}
}

// With the disk failing for good, memory overflows and the oldest records
// are dropped as memory_full: counted, never blocking, never panicking.
func TestFailingDiskDropsOldestAsMemoryFull(t *testing.T) {
	fault := fsadapter.NewFaultFS(afero.NewMemMapFs())
	h := newHarness(t, fault, testConfig())
	fault.AddRule(fsadapter.Rule{Err: syscall.EIO})
	h.add(0, 25, 100, 0)
	s := h.stats()
	if s.Dropped[DropMemoryFull] != 15 || s.MemoryRecords != 10 {
		t.Fatalf("dropped %d, memory %d; want 15 and 10", s.Dropped[DropMemoryFull], s.MemoryRecords)
	}
	fault.ClearRules()
	if got := h.drain(100); len(got) != 10 || got[0].Seq != 16 {
		t.Fatalf("kept %v, want 16-25", seqs(got))
	}
}

// Fail each filesystem operation of a mixed workload in turn, with EIO,
// ENOSPC and a short write: no call panics, the identity holds after each,
// and once the disk is healthy again everything not dropped drains.
func TestEveryOperationFailingOnce(t *testing.T) {
	workload := func(h *harness) {
		for round := range 3 {
			for i := range 12 {
				_ = h.b.Add(record(round*100+i, 100), h.now)
				h.check("Add")
			}
			if bt, err := h.b.Next(5, 1<<20, h.now); err == nil && len(bt.Records) > 0 {
				h.check("Next")
				if round != 1 {
					_ = h.b.Ack(h.now)
				} else if err := h.b.DeadLetter(DropPoison, h.now); err != nil {
					_ = h.b.Nack(h.now) // the host keeps the batch and tries later
				}
				h.check("Ack")
			}
			h.now = h.now.Add(time.Second)
			_ = h.b.Tick(h.now)
			h.check("Tick")
		}
	}
	dry := fsadapter.NewFaultFS(afero.NewMemMapFs())
	h := newHarness(t, dry, testConfig())
	base := dry.Ops()
	workload(h)
	total := dry.Ops() - base
	rules := []fsadapter.Rule{{Err: syscall.EIO}, {Err: syscall.ENOSPC}, {Err: syscall.ENOSPC, ShortWrite: 1}}
	for k := 1; k <= total; k++ {
		for _, rule := range rules {
			t.Run(fmt.Sprintf("op%d/%v", k, rule.Err), func(t *testing.T) {
				fault := fsadapter.NewFaultFS(afero.NewMemMapFs())
				h := newHarness(t, fault, testConfig())
				rule.At = fault.Ops() + k
				fault.AddRule(rule)
				workload(h)
				fault.ClearRules()
				h.tick(2 * time.Second)
				got := h.drain(100)
				s := h.stats()
				if s.MemoryRecords+s.DiskRecords+s.InFlightRecords != 0 {
					t.Fatalf("left after drain: %+v", s)
				}
				for i := 1; i < len(got); i++ {
					if got[i].Seq <= got[i-1].Seq {
						t.Fatalf("out of order: %v", seqs(got))
					}
				}
			})
		}
	}
}

// A segment that stays unreadable does not stall delivery for good: after
// read_give_up (and three tries) it goes to quarantine/, its records are
// counted as corrupt, and the records behind it are delivered.
func TestUnreadableSegmentIsGivenUp(t *testing.T) {
	fault := fsadapter.NewFaultFS(afero.NewMemMapFs())
	h := newHarness(t, fault, testConfig())
	h.add(0, 20, 100, 0) // segments 1-8, 9-10, 11-18, 19-20
	fault.AddRule(fsadapter.Rule{Kind: fsadapter.OpRead, Path: segName(1), Err: syscall.EIO})
	for i := range 3 {
		if _, err := h.b.Next(100, 1<<20, h.now); err == nil {
			t.Fatalf("read %d of a failing segment succeeded", i)
		}
		h.check("Next")
		h.now = h.now.Add(h.cfg.ReadGiveUp / 2)
	}
	got := h.drain(100)
	if len(got) != 12 || got[0].Seq != 9 {
		t.Fatalf("after giving up: %v", seqs(got))
	}
	s := h.stats()
	if s.Dropped[DropCorrupt] != 8 || s.QuarantineFiles != 1 {
		t.Fatalf("corrupt %d quarantined %d", s.Dropped[DropCorrupt], s.QuarantineFiles)
	}
}
