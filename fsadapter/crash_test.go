package fsadapter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A file fsynced on its own is not enough: its name lives in the directory,
// and the directory was never fsynced.
func TestPowerLossDropsFileInUnsyncedDir(t *testing.T) {
	c := NewCrashFS(1)
	writeFile(t, c, "/f", "data", true)
	c.Crash(PowerLoss)
	_, err := c.Stat("/f")
	wantNotExist(t, err, "file created in an unsynced dir")
	if files := c.Files(); len(files) != 0 {
		t.Fatalf("Files() = %v, want none", files)
	}
}

func TestPowerLossKeepsFileInSyncedDir(t *testing.T) {
	c := NewCrashFS(1)
	writeFile(t, c, "/f", "data", true)
	syncDir(t, c, "/")
	c.Crash(PowerLoss)
	if got := readFile(t, c, "/f"); got != "data" {
		t.Fatalf("/f = %q, want data", got)
	}
}

// A directory is an entry of its parent: mkdir needs the parent's fsync,
// and files inside need the directory's own.
func TestPowerLossKeepsOnlySyncedDirs(t *testing.T) {
	c := NewCrashFS(1)
	mkdir(t, c, "/kept")
	mkdir(t, c, "/lost")
	syncDir(t, c, "/")
	mkdir(t, c, "/unsynced")
	writeFile(t, c, "/kept/f", "x", true)
	c.Crash(PowerLoss)
	if !exists(c, "/kept") || !exists(c, "/lost") || exists(c, "/unsynced") {
		t.Fatalf("after power loss:\n%s", c.Dump())
	}
	if exists(c, "/kept/f") {
		t.Fatal("/kept/f survived although /kept was never fsynced")
	}
}

func TestPowerLossUndoesUnsyncedRename(t *testing.T) {
	c := NewCrashFS(1)
	writeFile(t, c, "/a", "A", true)
	writeFile(t, c, "/b", "old B", true)
	syncDir(t, c, "/")
	if err := c.Rename("/a", "/b"); err != nil {
		t.Fatal(err)
	}
	c.Crash(PowerLoss)
	if got := readFile(t, c, "/a"); got != "A" {
		t.Fatalf("/a = %q, want the rename undone", got)
	}
	if got := readFile(t, c, "/b"); got != "old B" {
		t.Fatalf("/b = %q, want the replaced file back", got)
	}
}

func TestPowerLossKeepsSyncedRename(t *testing.T) {
	c := NewCrashFS(1)
	writeFile(t, c, "/a", "A", true)
	syncDir(t, c, "/")
	if err := c.Rename("/a", "/b"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, c, "/")
	c.Crash(PowerLoss)
	if exists(c, "/a") || readFile(t, c, "/b") != "A" {
		t.Fatalf("after power loss:\n%s", c.Dump())
	}
}

func TestPowerLossRestoresUnsyncedRemoval(t *testing.T) {
	c := NewCrashFS(1)
	mkdir(t, c, "/d")
	syncDir(t, c, "/")
	writeFile(t, c, "/d/f", "synced", true)
	syncDir(t, c, "/d")
	if err := c.RemoveAll("/d"); err != nil {
		t.Fatal(err)
	}
	c.Crash(PowerLoss)
	if got := readFile(t, c, "/d/f"); got != "synced" {
		t.Fatalf("/d/f = %q, want the removal undone", got)
	}

	if err := c.Remove("/d/f"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, c, "/d")
	c.Crash(PowerLoss)
	if exists(c, "/d/f") {
		t.Fatal("a removal fsynced in its directory came back")
	}
}

// The spool appends records after a segment's last fsync; a power cut may
// keep none, all or a prefix of them, chosen by the seed.
func TestPowerLossTearsUnsyncedData(t *testing.T) {
	const synced = "synced records|"
	pending := strings.Repeat("0123456789", 100)
	survivor := func(seed int64) string {
		c := NewCrashFS(seed)
		writeFile(t, c, "/seg", synced, true)
		syncDir(t, c, "/")
		f, err := c.OpenFile("/seg", osAppendWrite, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(pending)
		c.Crash(PowerLoss)
		return readFile(t, c, "/seg")
	}
	for seed := range int64(20) {
		got := survivor(seed)
		if !strings.HasPrefix(synced+pending, got) || len(got) < len(synced) {
			t.Fatalf("seed %d: %d bytes survive, not synced data plus a prefix", seed, len(got))
		}
	}
	a, b := survivor(1), survivor(2)
	if a == b {
		t.Fatalf("seeds 1 and 2 both tear at %d bytes; want different tears", len(a))
	}
	if again := survivor(1); again != a {
		t.Fatalf("seed 1 tore at %d bytes, then at %d", len(a), len(again))
	}
	t.Logf("seed 1 keeps %d bytes, seed 2 keeps %d", len(a), len(b))
}

// tornData's outcomes, enumerated for small cases: every draw is one of
// them, and enough draws reach all of them.
func TestTornDataOutcomes(t *testing.T) {
	cases := []struct {
		synced, pending string
		want            []string
	}{
		{"ab", "abcd", []string{"ab", "abc", "abcd"}},          // append
		{"abcd", "aXcd", []string{"abcd", "aXcd"}},             // overwrite
		{"abcd", "ab", []string{"abcd", "ab"}},                 // truncate
		{"abcd", "XY", []string{"abcd", "Xbcd", "XYcd", "XY"}}, // truncate and rewrite
		{"", "xyz", []string{"", "x", "xy", "xyz"}},            // never synced
	}
	for _, tc := range cases {
		rng := rand.New(rand.NewPCG(7, 7))
		seen := map[string]bool{}
		for range 200 {
			got := string(tornData([]byte(tc.synced), []byte(tc.pending), rng))
			if !slices.Contains(tc.want, got) {
				t.Fatalf("tornData(%q, %q) = %q, want one of %q", tc.synced, tc.pending, got, tc.want)
			}
			seen[got] = true
		}
		if len(seen) != len(tc.want) {
			t.Errorf("tornData(%q, %q) reached only %v", tc.synced, tc.pending, seen)
		}
	}
}

// Killing the process loses nothing the kernel holds; only a power loss
// afterwards can.
func TestProcessKillKeepsEverything(t *testing.T) {
	c := NewCrashFS(1)
	writeFile(t, c, "/gone", "g", true)
	syncDir(t, c, "/")
	mkdir(t, c, "/d")
	writeFile(t, c, "/d/a", "unsynced", false)
	if err := c.Rename("/d/a", "/d/b"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("/gone"); err != nil {
		t.Fatal(err)
	}
	before := c.Dump()
	c.Crash(ProcessKill)
	if after := c.Dump(); after != before {
		t.Fatalf("process kill changed the tree:\n%s\nwant:\n%s", after, before)
	}
	if got := readFile(t, c, "/d/b"); got != "unsynced" {
		t.Fatalf("/d/b = %q", got)
	}
	c.Crash(PowerLoss)
	if exists(c, "/d") || !exists(c, "/gone") {
		t.Fatalf("power loss after process kill:\n%s", c.Dump())
	}
}

// TestPowerLossFullProtocol cuts the power after every step of
// temp → write → fsync → close → rename → fsync dir. The segment is never
// seen partly written: it is absent or whole, and whole once the directory
// fsync returned.
func TestPowerLossFullProtocol(t *testing.T) {
	const data = "header|record 1|record 2|"
	for cut := 0; cut <= 6; cut++ {
		t.Run(fmt.Sprintf("cut after step %d", cut), func(t *testing.T) {
			c := NewCrashFS(int64(cut))
			mkdir(t, c, "/spool")
			syncDir(t, c, "/")
			runProtocol(t, c, data, cut)
			c.Crash(PowerLoss)
			_, err := c.Stat("/spool/seg")
			switch {
			case cut == 6 && err != nil:
				t.Fatalf("segment lost after the directory fsync: %v", err)
			case err == nil && readFile(t, c, "/spool/seg") != data:
				t.Fatalf("segment visible but torn: %q", readFile(t, c, "/spool/seg"))
			}
			if cut == 6 && exists(c, "/spool/seg.tmp") {
				t.Fatal("temp name survived the synced rename")
			}
		})
	}
}

// runProtocol runs the first steps of the segment write protocol.
func runProtocol(t *testing.T, c *CrashFS, data string, steps int) {
	t.Helper()
	var f interface {
		io.Writer
		Sync() error
		Close() error
	}
	do := []func() error{
		func() (err error) { f, err = c.Create("/spool/seg.tmp"); return err },
		func() error { _, err := f.Write([]byte(data)); return err },
		func() error { return f.Sync() },
		func() error { return f.Close() },
		func() error { return c.Rename("/spool/seg.tmp", "/spool/seg") },
		func() error { syncDir(t, c, "/spool"); return nil },
	}
	for i := range steps {
		if err := do[i](); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
}

// Leaving out the file fsync is the seed's bug: the rename is durable, the
// data is not, and some seed shows a torn or empty segment.
func TestPowerLossCatchesMissingFileFsync(t *testing.T) {
	const data = "header|record 1|record 2|"
	for seed := range int64(10) {
		c := NewCrashFS(seed)
		mkdir(t, c, "/spool")
		syncDir(t, c, "/")
		writeFile(t, c, "/spool/seg.tmp", data, false)
		if err := c.Rename("/spool/seg.tmp", "/spool/seg"); err != nil {
			t.Fatal(err)
		}
		syncDir(t, c, "/spool")
		c.Crash(PowerLoss)
		if got := readFile(t, c, "/spool/seg"); got != data {
			t.Logf("seed %d: segment holds %d of %d bytes", seed, len(got), len(data))
			return
		}
	}
	t.Fatal("no seed tore a segment renamed without a file fsync")
}

// Each directory survives on its own: a cross-directory move fsynced only
// at its destination leaves the file under both names, as on a filesystem
// without a journal. Recovery code must tolerate that.
func TestPowerLossCrossDirRenameSyncedAtDestination(t *testing.T) {
	c := NewCrashFS(1)
	mkdir(t, c, "/spool")
	mkdir(t, c, "/spool/quarantine")
	syncDir(t, c, "/")
	writeFile(t, c, "/spool/seg", "bad", true)
	syncDir(t, c, "/spool")
	if err := c.Rename("/spool/seg", "/spool/quarantine/seg"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, c, "/spool/quarantine")
	c.Crash(PowerLoss)
	want := []string{"/spool/quarantine/seg", "/spool/seg"}
	if got := c.Files(); !slices.Equal(got, want) {
		t.Fatalf("Files() = %v, want %v", got, want)
	}
}

func TestCrashInvalidatesHandles(t *testing.T) {
	for _, kind := range []CrashKind{ProcessKill, PowerLoss} {
		t.Run(kind.String(), func(t *testing.T) {
			c := NewCrashFS(1)
			writeFile(t, c, "/f", "data", true)
			syncDir(t, c, "/")
			f, _ := c.OpenFile("/f", osReadWrite, 0)
			d, _ := c.Open("/")
			c.Crash(kind)
			uses := map[string]error{
				"Write":   second(f.Write([]byte("x"))),
				"Read":    second(f.Read(make([]byte, 1))),
				"Seek":    second(f.Seek(0, io.SeekStart)),
				"Stat":    second(f.Stat()),
				"Sync":    f.Sync(),
				"DirSync": d.Sync(),
				"Readdir": second(d.Readdirnames(-1)),
				"Close":   f.Close(),
			}
			for name, err := range uses {
				if !errors.Is(err, ErrCrashed) {
					t.Errorf("%s after crash: %v, want ErrCrashed", name, err)
				}
			}
			if got := readFile(t, c, "/f"); got != "data" {
				t.Fatalf("reopened /f = %q", got)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

// The same seed and operations give the same disk, byte for byte.
func TestCrashFSIsDeterministic(t *testing.T) {
	run := func(seed int64) string {
		c := NewCrashFS(seed)
		for i := range 20 {
			name := fmt.Sprintf("/f%02d", i)
			writeFile(t, c, name, strings.Repeat("x", 10+i), i%2 == 0)
			if i%3 == 0 {
				syncDir(t, c, "/")
			}
			f, _ := c.OpenFile(name, osAppendWrite, 0)
			f.WriteString(strings.Repeat("y", 30))
			f.Close()
		}
		c.Crash(PowerLoss)
		var b bytes.Buffer
		for _, name := range c.Files() {
			fmt.Fprintf(&b, "%s %q\n", name, readFile(t, c, name))
		}
		return b.String()
	}
	if a, b := run(42), run(42); a != b {
		t.Fatalf("seed 42 gave two disks:\n%s\n%s", a, b)
	}
	if run(42) == run(43) {
		t.Fatal("seeds 42 and 43 gave the same disk; tearing ignores the seed")
	}
}

func TestCrashFSDump(t *testing.T) {
	c := NewCrashFS(1)
	mkdir(t, c, "/d")
	syncDir(t, c, "/")
	writeFile(t, c, "/d/f", "abc", true)
	f, _ := c.OpenFile("/d/f", osAppendWrite, 0)
	f.WriteString("de")
	want := "/d/, entries unsynced\n/d/f 5 bytes, entry unsynced, 3 bytes synced\n"
	if got := c.Dump(); got != want {
		t.Fatalf("Dump() =\n%s\nwant:\n%s", got, want)
	}
}
