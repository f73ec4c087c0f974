package core

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// 10 records of 100 bytes reach memory_records (10): the 10th Add spills.
// A frame is 20+100 = 120 bytes and a header 56, so a 1 KiB segment holds
// 8 records (56+8*120 = 1016): the spill writes segments of 8 and 2.
func TestAddSpillsAtRecordLimit(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 9, 100, 0)
	if s := h.stats(); s.MemoryRecords != 9 || s.DiskRecords != 0 {
		t.Fatalf("after 9 adds: memory %d disk %d, want 9 and 0", s.MemoryRecords, s.DiskRecords)
	}
	h.add(9, 1, 100, 0)
	s := h.stats()
	if s.MemoryRecords != 0 || s.DiskRecords != 10 || s.DiskSegments != 2 {
		t.Fatalf("after 10 adds: memory %d disk %d segments %d, want 0, 10, 2", s.MemoryRecords, s.DiskRecords, s.DiskSegments)
	}
	if s.DiskBytes != 56+8*120+56+2*120 {
		t.Fatalf("disk bytes %d, want %d", s.DiskBytes, 56+8*120+56+2*120)
	}
	if got := segFiles(t, h.fs); len(got) != 2 || got[0] != segName(1) || got[1] != segName(9) {
		t.Fatalf("segment files %v, want %s and %s", got, segName(1), segName(9))
	}
}

// 64 KiB of memory holds 63 records of 1 KiB (64,512 bytes); the 64th
// (65,536 bytes, at the limit) spills.
func TestAddSpillsAtByteLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MemoryRecords = 1000
	h := newHarness(t, afero.NewMemMapFs(), cfg)
	h.add(0, 63, 1024, 0)
	if s := h.stats(); s.DiskRecords != 0 {
		t.Fatalf("spilled before the byte limit: %+v", s)
	}
	h.add(63, 1, 1024, 0)
	if s := h.stats(); s.DiskRecords != 64 || s.MemoryBytes != 0 {
		t.Fatalf("after 64 KiB: disk %d memory bytes %d, want 64 and 0", s.DiskRecords, s.MemoryBytes)
	}
}

// max_memory_age (1 s) spills on Add and on Tick.
func TestSpillAtAge(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 3, 100, 400*time.Millisecond) // arrivals at 0, 0.4, 0.8 s; now 1.2 s
	if s := h.stats(); s.DiskRecords != 0 {
		t.Fatalf("spilled early: %+v", s)
	}
	h.add(3, 1, 100, 0) // oldest is 1.2 s old: this Add spills all four
	if s := h.stats(); s.DiskRecords != 4 {
		t.Fatalf("Add did not spill at age: disk %d", s.DiskRecords)
	}
	h.add(4, 1, 100, 0)
	h.tick(999 * time.Millisecond)
	if s := h.stats(); s.DiskRecords != 4 {
		t.Fatalf("Tick spilled before the age: disk %d", s.DiskRecords)
	}
	h.tick(time.Millisecond)
	if s := h.stats(); s.DiskRecords != 5 || s.MemoryRecords != 0 {
		t.Fatalf("Tick did not spill at age: disk %d memory %d", s.DiskRecords, s.MemoryRecords)
	}
}

// A clock stepped back by an hour neither makes ages negative nor stalls
// the age spill: it fires one second of the host's clock after the step.
func TestClockSteppedBackDoesNotStall(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 1, 100, 0)
	h.now = h.now.Add(-time.Hour)
	h.add(1, 1, 100, 0)
	if age := h.stats().OldestRecordAge; age < 0 {
		t.Fatalf("negative age %s", age)
	}
	h.tick(999 * time.Millisecond)
	if s := h.stats(); s.DiskRecords != 0 {
		t.Fatalf("spilled early: %d on disk", s.DiskRecords)
	}
	h.tick(time.Millisecond)
	if s := h.stats(); s.DiskRecords != 2 {
		t.Fatalf("the step back stalled the age spill: disk %d", s.DiskRecords)
	}
}

// Records come out once each, in sequence order, whether they were on
// disk or in memory, and byte-exact.
func TestDrainInOrderAcrossDiskAndMemory(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 25, 100, 0) // 20 on disk (two spills), 5 in memory
	got := h.drain(7)
	if len(got) != 25 {
		t.Fatalf("drained %d, want 25", len(got))
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) || !bytes.Equal(r.Data, record(i, 100)) {
			t.Fatalf("record %d: seq %d data %q", i, r.Seq, r.Data)
		}
	}
	if files := segFiles(t, h.fs); len(files) != 0 {
		t.Fatalf("acknowledged segments left on disk: %v", files)
	}
	if s := h.stats(); s.Delivered != 25 || s.DiskBytes != 0 {
		t.Fatalf("delivered %d disk bytes %d", s.Delivered, s.DiskBytes)
	}
}

func TestBatchLimits(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 5, 100, 0)
	if bt := h.next(3, 1<<20); len(bt.Records) != 3 || bt.First() != 1 || bt.Last() != 3 || bt.Bytes != 300 {
		t.Fatalf("by records: %d records %d-%d, %d bytes", len(bt.Records), bt.First(), bt.Last(), bt.Bytes)
	}
	h.ack()
	if bt := h.next(10, 150); len(bt.Records) != 1 {
		t.Fatalf("by bytes: %d records, want 1", len(bt.Records))
	}
	h.ack()
	if bt := h.next(10, 10); len(bt.Records) != 1 {
		t.Fatalf("a record larger than max bytes must still go alone: %d records", len(bt.Records))
	}
}

func TestOneBatchInFlight(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 3, 100, 0)
	if err := h.b.Ack(h.now); !errors.Is(err, ErrNoBatch) {
		t.Fatalf("Ack with nothing in flight: %v", err)
	}
	h.next(2, 1<<20)
	if _, err := h.b.Next(2, 1<<20, h.now); !errors.Is(err, ErrBatchInFlight) {
		t.Fatalf("second Next: %v", err)
	}
	if s := h.stats(); s.InFlightRecords != 2 || s.MemoryRecords != 1 {
		t.Fatalf("in flight %d memory %d", s.InFlightRecords, s.MemoryRecords)
	}
}

// Nack puts the batch back at the front; a smaller limit splits it.
func TestNackRedeliversFromTheFront(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	h.add(0, 12, 100, 0) // 10 on disk, 2 in memory
	bt := h.next(11, 1<<20)
	if bt.First() != 1 || bt.Last() != 11 {
		t.Fatalf("first batch %d-%d, want 1-11 (disk into memory)", bt.First(), bt.Last())
	}
	if err := h.b.Nack(h.now); err != nil {
		t.Fatal(err)
	}
	h.check("Nack")
	if bt := h.next(5, 1<<20); bt.First() != 1 || bt.Last() != 5 {
		t.Fatalf("after Nack: %d-%d, want 1-5", bt.First(), bt.Last())
	}
	h.ack()
	if got := h.drain(100); len(got) != 7 || got[0].Seq != 6 {
		t.Fatalf("rest: %d records from %d", len(got), got[0].Seq)
	}
}

// A batch ends at the first missing sequence number: memory_full drops
// make a gap that no batch spans.
func TestBatchEndsAtGap(t *testing.T) {
	cfg := testConfig()
	h := newHarness(t, afero.NewMemMapFs(), cfg)
	h.add(0, 4, 100, 0) // seqs 1-4
	h.next(1, 1<<20)    // seq 1 in flight
	// Spills fail: the disk refuses everything from now on.
	h.b.fs = afero.NewReadOnlyFs(h.fs)
	h.add(4, 8, 100, 0) // seqs 5-12: memory holds 10, so 2 oldest not in flight (2, 3) drop
	s := h.stats()
	if s.Dropped[DropMemoryFull] != 2 || s.SpillFailures == 0 {
		t.Fatalf("dropped %d memory_full, %d spill failures", s.Dropped[DropMemoryFull], s.SpillFailures)
	}
	h.b.fs = h.fs
	h.ack()
	if bt := h.next(100, 1<<20); bt.First() != 4 || bt.Last() != 12 {
		t.Fatalf("after the gap: %d-%d, want 4-12", bt.First(), bt.Last())
	}
}

func TestRejectsBadRecords(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), testConfig())
	if err := h.b.Add(make([]byte, 1025), h.now); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if err := h.b.Add(nil, h.now); !errors.Is(err, ErrEmptyRecord) {
		t.Fatalf("empty: %v", err)
	}
	if s := h.stats(); s.Accepted != 0 {
		t.Fatalf("rejected records were accepted: %d", s.Accepted)
	}
}

// Shutdown spills memory and the batch in flight; afterwards every call
// answers ErrClosed, and a fresh Open finds every unacknowledged record.
func TestShutdownSavesEverythingUnacknowledged(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 15, 100, 0) // 10 on disk, 5 in memory
	h.next(3, 1<<20)
	h.ack()          // 1-3 delivered
	h.next(9, 1<<20) // 4-12 in flight, 11 and 12 from memory
	h.shutdown()
	for name, err := range map[string]error{
		"Add":      h.b.Add([]byte(`{}`), h.now),
		"Tick":     h.b.Tick(h.now),
		"Ack":      h.b.Ack(h.now),
		"Nack":     h.b.Nack(h.now),
		"Shutdown": h.b.Shutdown(h.now),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Shutdown: %v, want ErrClosed", name, err)
		}
	}
	if _, err := h.b.Next(1, 1, h.now); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Shutdown: %v", err)
	}
	h.reopen()
	got := h.drain(100)
	// Segment 1-8 was partly acknowledged (1-3): it comes back whole.
	if len(got) != 15 || got[0].Seq != 1 || got[14].Seq != 15 {
		t.Fatalf("after reopen: %d records %d-%d, want 15 (1-15)", len(got), got[0].Seq, got[len(got)-1].Seq)
	}
	if s := h.stats(); s.Recovered != 15 || s.Redelivered != 3 {
		t.Fatalf("recovered %d redelivered %d, want 15 and 3", s.Recovered, s.Redelivered)
	}
}

// Sequence numbers never repeat: not after a restart, and not after the
// spool emptied and the process then died without Shutdown.
func TestSequenceNeverRepeats(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0)
	first := h.drain(100)
	h.reopen() // the old Buffer is abandoned: a crash
	h.add(10, 1, 100, 0)
	h.tick(time.Second)
	second := h.drain(100)
	if len(second) != 1 || second[0].Seq <= first[len(first)-1].Seq {
		t.Fatalf("after an emptied spool and a crash: seq %d, last before %d", second[0].Seq, first[len(first)-1].Seq)
	}
	if h.rep.NewAgent {
		t.Fatalf("a readable spool.meta made a new agent: %s", h.rep.NewAgentReason)
	}
}

func TestTempFilesRemovedAtOpen(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0)
	if err := afero.WriteFile(fs, "/spool/"+segName(500)+tmpSuffix, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reopen()
	if h.rep.TempFilesRemoved != 1 || h.rep.Records != 10 {
		t.Fatalf("report %+v", h.rep)
	}
	if ok, _ := afero.Exists(fs, "/spool/"+segName(500)+tmpSuffix); ok {
		t.Fatal("temp file still there")
	}
}

func TestOpenRefusesUnknownVersions(t *testing.T) {
	t.Run("segment", func(t *testing.T) {
		fs := afero.NewMemMapFs()
		h := newHarness(t, fs, testConfig())
		h.add(0, 10, 100, 0)
		name := "/spool/" + segName(1)
		data, _ := afero.ReadFile(fs, name)
		hdr, _ := parseHeader(data)
		hdr.Version = 2
		copy(data, appendHeader(nil, hdr))
		_ = afero.WriteFile(fs, name, data, 0o600)
		_, _, err := Open(fs, "/spool", testConfig(), t0)
		var uv *UnknownVersionError
		if !errors.As(err, &uv) || uv.Version != 2 {
			t.Fatalf("Open: %v", err)
		}
		after, _ := afero.ReadFile(fs, name)
		if !bytes.Equal(after, data) {
			t.Fatal("the unknown segment was changed")
		}
	})
	t.Run("meta", func(t *testing.T) {
		fs := afero.NewMemMapFs()
		newHarness(t, fs, testConfig())
		_ = afero.WriteFile(fs, "/spool/spool.meta", []byte(`{"version":9,"agent_id":"x"}`), 0o600)
		_, _, err := Open(fs, "/spool", testConfig(), t0)
		var uv *UnknownVersionError
		if !errors.As(err, &uv) || uv.Version != 9 {
			t.Fatalf("Open: %v", err)
		}
	})
}

// An unreadable spool.meta beside segments makes a new agent ID, and the
// new numbers start above every number on disk.
func TestUnreadableMetaMakesNewAgent(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	oldAgent := h.rep.AgentID
	h.add(0, 10, 100, 0)
	_ = afero.WriteFile(fs, "/spool/spool.meta", []byte("garbage"), 0o600)
	h.reopen()
	if !h.rep.NewAgent || h.rep.AgentID == oldAgent || h.rep.Records != 10 {
		t.Fatalf("report %+v", h.rep)
	}
	h.add(10, 1, 100, 0)
	got := h.drain(100)
	if got[10].Seq <= got[9].Seq {
		t.Fatalf("new seq %d not above %d", got[10].Seq, got[9].Seq)
	}
}

// A batch handed out from memory can be spilled while it is in flight (by
// the record limit or the age); its answer then resolves records that sit
// in a segment never read back. Ack and DeadLetter must both work, and the
// segment must give out only what is left.
func TestAnswerAfterInflightBatchWasSpilled(t *testing.T) {
	for _, resolve := range []string{"ack", "dead-letter", "nack"} {
		t.Run(resolve, func(t *testing.T) {
			h := newHarness(t, afero.NewMemMapFs(), testConfig())
			h.add(0, 5, 100, 0)
			bt := h.next(3, 1<<20) // 1-3 from memory
			h.add(5, 5, 100, 0)    // the 10th record spills 1-10, the batch included
			if s := h.stats(); s.DiskRecords != 7 || s.InFlightRecords != 3 {
				t.Fatalf("disk %d in flight %d, want 7 and 3", s.DiskRecords, s.InFlightRecords)
			}
			var err error
			switch resolve {
			case "ack":
				err = h.b.Ack(h.now)
			case "dead-letter":
				err = h.b.DeadLetter(DropPoison, h.now)
			default:
				err = h.b.Nack(h.now)
			}
			if err != nil {
				t.Fatal(err)
			}
			h.check(resolve)
			got := h.drain(100)
			want := 7
			if resolve == "nack" {
				want = 10
			}
			if len(got) != want || got[len(got)-1].Seq != 10 || (resolve != "nack" && got[0].Seq != bt.Last()+1) {
				t.Fatalf("after %s: %v", resolve, seqs(got))
			}
		})
	}
}
