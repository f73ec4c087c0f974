package core

import (
	"testing"

	"github.com/spf13/afero"
)

// Segments of 8 records of 100 bytes are 1016 bytes, of 2 records 296: a
// spill of 10 records takes 1312 bytes, segment by segment. disk_bytes 3000
// holds two spills (2624); of the third, segment 21-28 needs 1016 bytes
// (3640 in all) and segment 29-30 296 more.
func capConfig(policy WhenFull) Config {
	cfg := testConfig()
	cfg.DiskBytes = 3000
	cfg.WhenFull = policy
	return cfg
}

func TestDiskFullDropOldest(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), capConfig(DropOldest))
	h.add(0, 30, 100, 0)
	// Segment 1-8 gives way to 21-28 (2624 bytes again); 29-30 then fits
	// (2920): 8 dropped, 22 kept.
	s := h.stats()
	if s.Dropped[DropDiskFullOldest] != 8 || s.DiskRecords != 22 || s.DiskBytes != 2920 {
		t.Fatalf("dropped %d, disk %d records %d bytes", s.Dropped[DropDiskFullOldest], s.DiskRecords, s.DiskBytes)
	}
	if got := h.drain(100); got[0].Seq != 9 {
		t.Fatalf("oldest kept record %d, want 9", got[0].Seq)
	}
}

func TestDiskFullDropOldestSparesTheBatchInFlight(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), capConfig(DropOldest))
	h.add(0, 20, 100, 0)
	bt := h.next(3, 1<<20) // 1-3 of segment 1-8 in flight
	h.add(20, 10, 100, 0)
	// Segment 1-8 is in flight and stays. For 21-28 (1016 bytes) segments
	// 9-10 (296) and then 11-18 (1016) give way: 10 dropped.
	s := h.stats()
	if s.InFlightRecords != 3 || s.Dropped[DropDiskFullOldest] != 10 {
		t.Fatalf("in flight %d dropped %d, want 3 and 10", s.InFlightRecords, s.Dropped[DropDiskFullOldest])
	}
	h.ack()
	got := h.drain(100)
	if bt.First() != 1 || len(got) != 17 || got[0].Seq != 4 || got[5].Seq != 19 {
		t.Fatalf("batch from %d, then %v", bt.First(), seqs(got))
	}
}

func TestDiskFullDropNewest(t *testing.T) {
	h := newHarness(t, afero.NewMemMapFs(), capConfig(DropNewest))
	h.add(0, 30, 100, 0)
	// 21-28 does not fit and is dropped; 29-30 then fits (2920 bytes).
	s := h.stats()
	if s.Dropped[DropDiskFullNewest] != 8 || s.DiskRecords != 22 || s.MemoryRecords != 0 {
		t.Fatalf("dropped %d, disk %d, memory %d", s.Dropped[DropDiskFullNewest], s.DiskRecords, s.MemoryRecords)
	}
	if got := h.drain(100); len(got) != 22 || got[20].Seq != 29 {
		t.Fatalf("kept %v", seqs(got))
	}
}

// The host reads free space; spills keep min_free_bytes of it.
func TestMinFreeBytesReserve(t *testing.T) {
	cfg := testConfig()
	cfg.MinFreeBytes = 1000
	cfg.WhenFull = DropNewest
	h := newHarness(t, afero.NewMemMapFs(), cfg)
	// Room for one spill of 10 records (1312 bytes) above the reserve; the
	// second spill's segments (1016 and 296) would both dip into it.
	h.b.SetFreeBytes(1000 + 1312 + 100)
	h.add(0, 20, 100, 0)
	s := h.stats()
	if s.DiskRecords != 10 || s.Dropped[DropDiskFullNewest] != 10 {
		t.Fatalf("disk %d dropped %d", s.DiskRecords, s.Dropped[DropDiskFullNewest])
	}
}

// A graceful stop may exceed disk_bytes (by at most memory_bytes) rather
// than drop.
func TestShutdownIgnoresDiskCap(t *testing.T) {
	cfg := capConfig(DropNewest)
	h := newHarness(t, afero.NewMemMapFs(), cfg)
	h.add(0, 29, 100, 0) // 20 on disk (2624 bytes), 9 in memory
	h.shutdown()
	h.reopen()
	if h.rep.Records != 29 || h.rep.Bytes > cfg.DiskBytes+cfg.MemoryBytes {
		t.Fatalf("report %+v", h.rep)
	}
}

func TestDeadLetterAndItsCap(t *testing.T) {
	cfg := testConfig()
	cfg.DeadLetterBytes = 400 // one file of one 100-byte record is 176 bytes: two fit
	h := newHarness(t, afero.NewMemMapFs(), cfg)
	h.add(0, 5, 100, 0)
	for range 3 {
		h.next(1, 1<<20)
		if err := h.b.DeadLetter(DropPoison, h.now); err != nil {
			t.Fatal(err)
		}
		h.check("DeadLetter")
	}
	s := h.stats()
	if s.Dropped[DropPoison] != 3 || s.DeadLetterFiles != 2 || s.Dropped[DropDeadLetterEvicted] != 1 {
		t.Fatalf("poison %d files %d evicted %d", s.Dropped[DropPoison], s.DeadLetterFiles, s.Dropped[DropDeadLetterEvicted])
	}
	infos, _ := afero.ReadDir(h.fs, "/spool/dead-letter")
	if len(infos) != 2 || infos[0].Name() != "00000000000000000002.dl" {
		t.Fatalf("dead-letter files %d: the oldest should have gone", len(infos))
	}
	if got := h.drain(100); len(got) != 2 || got[0].Seq != 4 {
		t.Fatalf("rest %v", seqs(got))
	}
}

func TestQuarantineCap(t *testing.T) {
	cfg := testConfig()
	cfg.QuarantineBytes = 1500 // one 8-record segment (1016) fits, two do not
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, cfg)
	h.add(0, 20, 100, 0)
	flip(t, fs, "/spool/"+segName(1), 100)
	flip(t, fs, "/spool/"+segName(11), 100)
	h.drain(100)
	s := h.stats()
	if s.QuarantineFiles != 1 || s.QuarantineBytes > 1500 || s.EvictedFiles != 1 {
		t.Fatalf("quarantine %d files %d bytes, evicted %d", s.QuarantineFiles, s.QuarantineBytes, s.EvictedFiles)
	}
	if ok, _ := afero.Exists(fs, "/spool/quarantine/"+segName(11)); !ok {
		t.Fatal("the newest quarantined file should stay")
	}
}

func seqs(rs []Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}
