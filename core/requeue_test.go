package core

import (
	"testing"

	"github.com/bitville/apmd/fsadapter"
	"github.com/spf13/afero"
)

// Two poison records are dead-lettered; requeued, they are delivered next,
// with their original numbers; a second run finds nothing to do.
func TestRequeueDeadLetters(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 6, 100, 0)
	for range 2 { // seqs 1 and 2 are rejected
		h.next(1, 1<<20)
		if err := h.b.DeadLetter(DropPoison, h.now); err != nil {
			t.Fatal(err)
		}
	}
	h.drain(100) // 3-6 delivered
	h.shutdown()
	rep, err := Requeue(fs, "/spool", h.cfg, deadLetters(t, fs), h.now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 2 || rep.Records != 2 || rep.Skipped != 0 {
		t.Fatalf("report %+v", rep)
	}
	if left := deadLetters(t, fs); len(left) != 0 {
		t.Fatalf("sources left: %v", left)
	}
	h.reopen()
	if got := h.drain(100); len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("requeued %v, want 1 and 2", seqs(got))
	}
}

// A record the spool still holds is skipped, never duplicated: the poison
// record's segment is still there (partly acknowledged) when requeue runs.
func TestRequeueSkipsWhatTheSpoolHolds(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0) // segment 1-8 and 9-10
	h.next(1, 1<<20)
	if err := h.b.DeadLetter(DropPoison, h.now); err != nil {
		t.Fatal(err)
	}
	h.shutdown() // segment 1-8 still on disk, record 1 in it
	rep, err := Requeue(fs, "/spool", h.cfg, deadLetters(t, fs), h.now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 0 || rep.Skipped != 1 || rep.Files != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// A crash after the segment is written but before the source is removed:
// the second run skips the record and removes the source.
func TestRequeueIsSafeToRepeatAfterACrash(t *testing.T) {
	crash := fsadapter.NewCrashFS(1)
	fault := fsadapter.NewFaultFS(crash)
	h := newHarness(t, fault, testConfig())
	h.add(0, 3, 100, 0)
	h.next(1, 1<<20)
	if err := h.b.DeadLetter(DropPoison, h.now); err != nil {
		t.Fatal(err)
	}
	h.drain(100)
	h.shutdown()
	src := deadLetters(t, fault)
	fault.AddRule(fsadapter.Rule{Kind: fsadapter.OpRemove, Path: "dead-letter"})
	if _, err := Requeue(fault, "/spool", h.cfg, src, h.now); err == nil {
		t.Fatal("the planted failure did not stop the first run")
	}
	crash.Crash(fsadapter.ProcessKill)
	fault.ClearRules()
	rep, err := Requeue(fault, "/spool", h.cfg, src, h.now)
	if err != nil || rep.Skipped != 1 || rep.Records != 0 || rep.Files != 1 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
	h.reopen()
	if got := h.drain(100); len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("delivered %v, want record 1 once", seqs(got))
	}
}

// The salvageable records of a quarantined file go back; damaged ones are
// counted.
func TestRequeueQuarantine(t *testing.T) {
	fs := afero.NewMemMapFs()
	h := newHarness(t, fs, testConfig())
	h.add(0, 10, 100, 0)
	flip(t, fs, "/spool/"+segName(1), 56+2*120+60) // record 3 damaged
	h.drain(100)                                   // 1,2,4-10 delivered; the file goes to quarantine/
	h.shutdown()
	rep, err := Requeue(fs, "/spool", h.cfg, []string{"/spool/quarantine/" + segName(1)}, h.now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 7 || rep.Damaged != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func deadLetters(t *testing.T, fs afero.Fs) []string {
	t.Helper()
	infos, err := afero.ReadDir(fs, "/spool/dead-letter")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fi := range infos {
		out = append(out, "/spool/dead-letter/"+fi.Name())
	}
	return out
}
