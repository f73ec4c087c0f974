package core

import (
	"syscall"
	"testing"
	"time"

	"github.com/bitville/apmd/fsadapter"

	"github.com/spf13/afero"
)

// flip inverts one byte of a file.
func flip(t *testing.T, fs afero.Fs, name string, off int) {
	t.Helper()
	data, err := afero.ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0xFF
	if err := afero.WriteFile(fs, name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A flipped byte inside the 3rd record's payload costs that record only:
// the other 7 of the segment are delivered, the loss is counted as
// corrupt, and the damaged file goes to quarantine/, never deleted.
func TestBadFrameCostsOneRecord(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0) // segments 1-8 and 9-10
	flip(t, fs, "/spool/"+segName(1), 56+2*120+20+50)
	got := h.drain(100)
	if len(got) != 9 {
		t.Fatalf("delivered %d, want 9", len(got))
	}
	for _, r := range got {
		if r.Seq == 3 {
			t.Fatal("the damaged record was delivered")
		}
	}
	s := h.stats()
	if s.Dropped[DropCorrupt] != 1 || s.QuarantineFiles != 1 {
		t.Fatalf("corrupt %d quarantined %d, want 1 and 1", s.Dropped[DropCorrupt], s.QuarantineFiles)
	}
	if ok, _ := afero.Exists(fs, "/spool/quarantine/"+segName(1)); !ok {
		t.Fatal("damaged segment not in quarantine/")
	}
}

// A damaged frame header (marker, length) also costs one record: the
// reader resyncs on the next marker.
func TestResyncAfterBadLength(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0)
	flip(t, fs, "/spool/"+segName(1), 56+120+5) // the length of record 2
	if got := h.drain(100); len(got) != 9 {
		t.Fatalf("delivered %d, want 9", len(got))
	}
}

// A damaged header is found at Open: the good records go to a fresh
// durable segment first, then the damaged file to quarantine/.
func TestDamagedHeaderSalvagedAtOpen(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0)
	flip(t, fs, "/spool/"+segName(1), 20) // inside the header's first seq
	h.reopen()
	if len(h.rep.Quarantined) != 1 || h.rep.Records != 10 || h.rep.CorruptRecords != 0 {
		t.Fatalf("report %+v", h.rep)
	}
	got := h.drain(100)
	if len(got) != 10 || got[0].Seq != 1 {
		t.Fatalf("delivered %d from %d, want 10 from 1", len(got), got[0].Seq)
	}
}

// A segment cut short (its size disagrees with its header) is salvaged at
// Open: 8 records, the file cut in the 6th: 5 survive, 3 counted corrupt.
func TestTruncatedSegmentSalvagedAtOpen(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0)
	f, _ := fs.OpenFile("/spool/"+segName(1), 2, 0)
	_ = f.Truncate(56 + 5*120 + 60)
	_ = f.Close()
	h.reopen()
	if h.rep.CorruptRecords != 3 || h.rep.Records != 7 {
		t.Fatalf("report %+v", h.rep)
	}
	s := h.stats()
	if s.Recovered != 10 || s.Dropped[DropCorrupt] != 3 {
		t.Fatalf("recovered %d corrupt %d, want 10 and 3", s.Recovered, s.Dropped[DropCorrupt])
	}
	if got := h.drain(100); len(got) != 7 {
		t.Fatalf("delivered %d, want 7", len(got))
	}
}

// A salvage interrupted after the damaged file was set aside, or after the
// fresh segment was written, finishes at the next Open without loss or
// duplicates.
func TestInterruptedSalvageFinishes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepFresh bool
	}{{"set aside only", false}, {"fresh segment written", true}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := afero.NewMemMapFs()
			h := newHarness(t, fs, testConfig())
			h.add(0, 10, 100, 0)
			good, _ := afero.ReadFile(fs, "/spool/"+segName(1))
			bad := append([]byte(nil), good...)
			bad[20] ^= 0xFF
			_ = fs.Remove("/spool/" + segName(1))
			_ = afero.WriteFile(fs, "/spool/"+segName(1)+damagedSuffix, bad, 0o600)
			if tc.keepFresh {
				_ = afero.WriteFile(fs, "/spool/"+segName(1), good, 0o600)
			}
			h.reopen()
			if got := h.drain(100); len(got) != 10 {
				t.Fatalf("delivered %d, want 10", len(got))
			}
			if ok, _ := afero.Exists(fs, "/spool/quarantine/"+segName(1)); !ok {
				t.Fatal("damaged file not quarantined")
			}
		})
	}
}

// A damaged segment that cannot be salvaged because the disk is full does
// not stop the start: Open succeeds, says so, and delivers the good records
// from the damaged file itself, in their place in sequence order; once
// they are acknowledged the file goes to quarantine/.
func TestSalvageOnAFullDiskIsDeferred(t *testing.T) {
	mem := afero.NewMemMapFs()
	fault := fsadapter.NewFaultFS(mem)
	h := newHarness(t, fault, testConfig())
	h.add(0, 10, 100, 0)
	flip(t, mem, "/spool/"+segName(1), 20) // header damaged
	fault.AddRule(fsadapter.Rule{Kind: fsadapter.OpWrite, Err: syscall.ENOSPC})
	h.reopen()
	if len(h.rep.SalvageDeferred) != 1 || h.rep.Records != 10 {
		t.Fatalf("report %+v", h.rep)
	}
	got := h.drain(100)
	if len(got) != 10 || got[0].Seq != 1 || got[9].Seq != 10 {
		t.Fatalf("delivered %v", seqs(got))
	}
	if s := h.stats(); s.QuarantineFiles != 1 {
		t.Fatalf("quarantined %d files", s.QuarantineFiles)
	}
	fault.ClearRules()
	h.add(10, 1, 100, 0)
	h.tick(time.Second)
	if got := h.drain(100); len(got) != 1 || got[0].Seq <= 10 {
		t.Fatalf("then %v", seqs(got))
	}
}

// A segment cut short while the daemon runs (after Open checked its size)
// costs only the records past the cut: 8 records, cut in the 6th.
func TestSegmentCutWhileRunning(t *testing.T) {
	mem := afero.NewMemMapFs()
	h := newHarness(t, mem, testConfig())
	h.add(0, 10, 100, 0)
	h.reopen()
	f, _ := mem.OpenFile("/spool/"+segName(1), 2, 0)
	_ = f.Truncate(56 + 5*120 + 60)
	_ = f.Close()
	got := h.drain(100)
	if len(got) != 7 || got[4].Seq != 5 || got[5].Seq != 9 {
		t.Fatalf("delivered %v, want 1-5 and 9-10", seqs(got))
	}
	if s := h.stats(); s.Dropped[DropCorrupt] != 3 || s.QuarantineFiles != 1 {
		t.Fatalf("corrupt %d quarantined %d", s.Dropped[DropCorrupt], s.QuarantineFiles)
	}
}
