package core

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bitville/apmd/fsadapter"
	"github.com/spf13/afero"
)

// crashRun is one run of a workload on a crashable, faulty filesystem. It
// keeps its own ledger of every record, never trusting core's counters.
type crashRun struct {
	t        *testing.T
	crash    *fsadapter.CrashFS
	fault    *fsadapter.FaultFS
	cfg      Config
	b        *Buffer
	ledger   map[uint64][]byte // every sequence number ever seen -> its record
	observed uint64            // highest number that reached a segment or Next
	next     int               // number of the next record to add
	crashAt  int               // the filesystem operation the process dies at; 0: never
	problems []string
}

// dead reports whether the process has reached its crash point: a dead
// process makes no more calls (in particular it acknowledges nothing).
func (r *crashRun) dead() bool { return r.crashAt > 0 && r.fault.Ops() >= r.crashAt }

func (r *crashRun) fail(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// checked runs one Buffer call and checks the identity after it: it must
// hold even while every filesystem operation fails.
func (r *crashRun) checked(op string, call func() error) error {
	err := call()
	if cerr := r.b.Stats(t0).CheckConservation(); cerr != nil {
		r.fail("after %s: %v", op, cerr)
	}
	return err
}

func (r *crashRun) open() error {
	b, _, err := Open(r.fault, "/spool", r.cfg, t0)
	if err != nil {
		return err
	}
	r.b = b
	return r.checked("Open", func() error { return nil })
}

func (r *crashRun) add(n int) {
	for range n {
		if r.dead() {
			break
		}
		data := record(r.next, 100)
		r.next++
		seq := r.b.nextSeq
		if r.checked("Add", func() error { return r.b.Add(data, t0) }) == nil {
			r.ledger[seq] = data
		}
	}
	r.noteDisk()
}

// drain hands out and acknowledges batches of three until nothing is left
// or an operation fails; it returns what was handed out.
func (r *crashRun) drain() []Record {
	var out []Record
	for range 1000 {
		var bt Batch
		err := r.checked("Next", func() (err error) { bt, err = r.b.Next(3, 1<<20, t0); return err })
		if err != nil || len(bt.Records) == 0 || r.dead() {
			return out
		}
		for _, rec := range bt.Records {
			r.observed = max(r.observed, rec.Seq)
			out = append(out, Record{rec.Seq, append([]byte(nil), rec.Data...)})
		}
		if r.checked("Ack", func() error { return r.b.Ack(t0) }) != nil {
			return out
		}
	}
	return out
}

// noteDisk raises observed to the highest number in a segment.
func (r *crashRun) noteDisk() {
	for _, s := range r.b.segs {
		r.observed = max(r.observed, s.hdr.Last)
	}
}

// mustSurvive lists the records the buffer holds as durable: in segments,
// not yet acknowledged.
func (r *crashRun) mustSurvive() []uint64 {
	var out []uint64
	for _, s := range r.b.segs {
		if s.loaded {
			for _, rec := range s.recs {
				out = append(out, rec.Seq)
			}
			continue
		}
		for seq := s.hdr.First; seq <= s.hdr.Last; seq++ {
			if _, ok := r.ledger[seq]; ok {
				out = append(out, seq)
			}
		}
	}
	return out
}

// verifyAfterCrash reopens, drains, adds more and drains again: nothing
// durable lost, nothing read that was not written, no number reused.
func (r *crashRun) verifyAfterCrash(survive []uint64) {
	r.fault.ClearRules()
	r.crashAt = 0
	if err := r.open(); err != nil {
		r.fail("Open after crash: %v", err)
		return
	}
	got := map[uint64]bool{}
	for _, rec := range r.drain() {
		want, ok := r.ledger[rec.Seq]
		if !ok || !bytes.Equal(want, rec.Data) {
			r.fail("seq %d came back as %q, never written as such", rec.Seq, rec.Data)
		}
		got[rec.Seq] = true
	}
	for _, seq := range survive {
		if !got[seq] {
			r.fail("durable record %d lost", seq)
		}
	}
	before := r.observed
	r.add(1)
	r.checked("Tick", func() error { return r.b.Tick(t0.Add(r.cfg.MaxMemoryAge)) })
	for _, rec := range r.drain() {
		if rec.Seq <= before && !got[rec.Seq] {
			r.fail("seq %d handed out again after the crash (highest seen before: %d)", rec.Seq, before)
		}
	}
}

// crashWorkload is a setup (not crashed) and an action crashed at each of
// its filesystem operations in turn.
type crashWorkload struct {
	name   string
	setup  func(r *crashRun)
	action func(r *crashRun)
}

var crashWorkloads = []crashWorkload{
	{"spill", func(r *crashRun) {}, func(r *crashRun) { r.add(25) }},
	{"ack", func(r *crashRun) { r.add(20) }, func(r *crashRun) { r.drain() }},
	{"recovery", func(r *crashRun) {
		r.add(20)
		_ = afero.WriteFile(r.crash, "/spool/"+segName(70)+tmpSuffix, []byte("partial"), 0o600)
		data, _ := afero.ReadFile(r.crash, "/spool/"+segName(11))
		data[20] ^= 0xFF // segment 11-18: header damaged, frames good
		_ = afero.WriteFile(r.crash, "/spool/"+segName(11), data, 0o600)
		syncAll(r.crash)
	}, func(r *crashRun) {
		if err := r.open(); err == nil && !r.dead() {
			r.drain()
		}
	}},
}

// syncAll makes the whole setup durable, so the action's crash is the only one.
func syncAll(fs *fsadapter.CrashFS) {
	for _, dir := range []string{"/", "/spool", "/spool/quarantine", "/spool/dead-letter"} {
		_ = syncDir(fs, dir)
	}
	for _, name := range fs.Files() {
		if f, err := fs.OpenFile(name, 2, 0); err == nil {
			_ = f.Sync()
			_ = f.Close()
		}
	}
}

type crashMode struct {
	kind fsadapter.CrashKind
	seed int64
}

var crashModes = []crashMode{{fsadapter.ProcessKill, 1}, {fsadapter.PowerLoss, 1}, {fsadapter.PowerLoss, 2}}

// runCrashPoints crashes w at every operation of its action, in every mode,
// and returns the problems found and how many crash points were explored.
func runCrashPoints(t *testing.T, w crashWorkload, bugs Bug) (problems []string, points int) {
	cfg := testConfig()
	cfg.SeqBlock = 8 // spills and Next cross blocks: spool.meta writes are crashed too
	cfg.Bugs = bugs
	newRun := func(seed int64) *crashRun {
		crash := fsadapter.NewCrashFS(seed)
		r := &crashRun{t: t, crash: crash, fault: fsadapter.NewFaultFS(crash), cfg: cfg, ledger: map[uint64][]byte{}}
		if err := r.open(); err != nil {
			t.Fatalf("%s: setup Open: %v", w.name, err)
		}
		w.setup(r)
		syncAll(crash)
		return r
	}
	dry := newRun(1)
	base := dry.fault.Ops()
	w.action(dry)
	total := dry.fault.Ops() - base
	if total < 5 {
		t.Fatalf("%s: only %d operations to crash at", w.name, total)
	}
	for k := 1; k <= total; k++ {
		for _, m := range crashModes {
			r := newRun(m.seed)
			r.crashAt = r.fault.Ops() + k
			r.fault.AddRule(fsadapter.Rule{From: r.crashAt})
			w.action(r)
			survive := r.mustSurvive()
			r.crash.Crash(m.kind)
			r.verifyAfterCrash(survive)
			for _, p := range r.problems {
				problems = append(problems, fmt.Sprintf("%s, crash at op %d/%d (%s): %s", w.name, k, total, m.kind, p))
			}
			points++
		}
	}
	return problems, points
}

// Crash at every filesystem operation of a spill, an ack and a recovery,
// by process kill and by power loss with two different tears.
func TestCrashAtEveryOperation(t *testing.T) {
	for _, w := range crashWorkloads {
		t.Run(w.name, func(t *testing.T) {
			problems, points := runCrashPoints(t, w, 0)
			t.Logf("%d crash points explored", points)
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// The crash tests catch planted bugs: without them these would pass.
func TestCrashPointsCatchPlantedBugs(t *testing.T) {
	for _, tc := range []struct {
		bug      Bug
		workload string
	}{
		{BugSkipDirSync, "spill"},
		{BugDeleteBeforeAck, "ack"},
	} {
		for _, w := range crashWorkloads {
			if w.name != tc.workload {
				continue
			}
			problems, points := runCrashPoints(t, w, tc.bug)
			if len(problems) == 0 {
				t.Errorf("planted bug %d in %s went unnoticed over %d crash points", tc.bug, w.name, points)
			} else {
				t.Logf("planted bug %d caught: %d problems, first: %s", tc.bug, len(problems), problems[0])
			}
		}
	}
}
