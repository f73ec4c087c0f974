package sim

import (
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
)

// Scenarios returns every named scenario, in the order a full run takes
// them. The list is built fresh: callers may change their copy.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "listener-outage-hours", Seeds: 3, About: "the listener is down for 2-4 hours while traffic goes on; the backlog fills the disk cap, then drains", Setup: outageSetup, Script: outageScript},
		{Name: "disk-full-then-freed", Seeds: 6, About: "a disk quota and a min_free_bytes reserve fill up during an outage (drop_oldest or drop_newest by seed), then space is freed", Setup: diskFullSetup, Script: diskFullScript},
		{Name: "crash-during-spill", Seeds: 2, About: "crash (kill, power loss with two tears) at every filesystem operation of three spills, an age spill and a graceful stop", Setup: workloadSetup, Script: spillWorkload, Enumerate: allModes},
		{Name: "power-loss-each-op", Seeds: 2, About: "crash at every operation of: spills, a partly acknowledged segment, a temp file left by a kill, a quarantine at recovery, delivery and a stop", Setup: workloadSetup, Script: fullWorkload, Enumerate: allModes},
		{Name: "torn-segment", Seeds: 6, About: "short writes during spills, power losses that tear pending writes, and stored segments whose tail is cut off", Script: tornScript},
		{Name: "bitflip-quarantine", Seeds: 6, About: "bit flips in stored segments, found at recovery (salvage, quarantine) or while delivering (corrupt)", Script: bitflipScript},
		{Name: "poison-batch", Seeds: 6, About: "a listener that answers 400 to batches holding poison records and 413 to large batches: bisect, dead-letter only the culprit", Setup: poisonSetup, Script: poisonScript},
		{Name: "auth-failure", Seeds: 4, About: "401 until the key is fixed and reloaded, then a redirect: nothing dropped, everything kept and delivered later", Setup: quietSetup, Script: authScript},
		{Name: "clock-jumps", Seeds: 6, About: "the host clock steps back and forward by hours while the listener flaps and throttles with Retry-After", Script: clockScript},
		{Name: "restart-storm", Seeds: 6, About: "graceful restarts every few seconds, some kills and power losses, a slow listener whose answers time out", Script: stormScript},
		{Name: "recorded-traffic", Seeds: 6, About: "the daemon's own recording replayed byte-exactly through the framing, with a flapping listener and crashes", Setup: replaySetup, Script: replayScript},
		{Name: "disk-faults", Seeds: 8, About: "EIO and ENOSPC on every kind of filesystem operation, short writes, and crashes in between", Script: diskFaultScript},
		{Name: "meta-write-faults", Seeds: 8, About: "spool.meta writes fail while segments are spilled and delivered, then the process dies: numbers must never repeat", Setup: metaSetup, Script: metaScript},
		{Name: "full-disk-recovery", Seeds: 1, About: "a stored segment is damaged while the disk is full, then the daemon restarts: Open must salvage it (known core bug open-enospc-salvage)", Script: fullDiskRecoveryScript},
		{Name: "random", Seeds: 100, About: "everything mixed at random: traffic, listener moods, faults, damage, clock steps, crashes, restarts", Script: randomScript},
	}
}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, bool) {
	for _, sc := range Scenarios() {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

// allModes crashes each operation three ways: a kill, and two power losses
// whose tears of pending writes differ.
var allModes = []CrashMode{{fsadapter.ProcessKill, "kill"}, {fsadapter.PowerLoss, "tear-a"}, {fsadapter.PowerLoss, "tear-b"}}

// between draws a duration uniformly in [lo, hi].
func (e *Engine) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(e.rng.Int64N(int64(hi-lo)+1))
}

func outageSetup(s *Setup, _ *rand.Rand) {
	s.Traffic.MeanGap = 1500 * time.Millisecond
	s.Traffic.BurstEvery = 10 * time.Minute
}

func outageScript(e *Engine) {
	e.runFor(e.between(5*time.Minute, 15*time.Minute))
	e.setListener("down (connection refused)", func(l *Listener) { l.Down = true })
	e.runFor(e.between(2*time.Hour, 4*time.Hour))
	e.setListener("back up", func(l *Listener) { l.Down = false })
	e.runFor(20 * time.Minute)
}

func diskFullSetup(s *Setup, rng *rand.Rand) {
	s.Buffer.MinFreeBytes = 32 << 10
	if rng.IntN(2) == 1 {
		s.Buffer.WhenFull = core.DropNewest
	}
}

func diskFullScript(e *Engine) {
	e.runFor(2 * time.Minute)
	e.setQuota(int64(256+e.rng.IntN(256)) << 10)
	e.setListener("down", func(l *Listener) { l.Down = true })
	e.runFor(e.between(10*time.Minute, 25*time.Minute))
	if e.rng.IntN(2) == 0 {
		e.crashWith(fsadapter.PowerLoss)
	}
	e.setQuota(0)
	e.note("disk freed")
	e.setListener("back up", func(l *Listener) { l.Down = false })
	e.runFor(15 * time.Minute)
}

// workloadSetup is small enough to count every operation: 10 records in
// memory, 2 KiB segments, sequence blocks of 16 (meta writes in the mix).
func workloadSetup(s *Setup, _ *rand.Rand) {
	s.Buffer.MemoryRecords = 10
	s.Buffer.SegmentBytes = 2 << 10
	s.Buffer.SeqBlock = 16
	s.Traffic.SizeMin, s.Traffic.SizeMax, s.Traffic.LargePermille = 100, 160, 0
}

// spillWorkload: three spills by count, one by age, a graceful stop.
func spillWorkload(e *Engine) {
	e.feed(12)
	e.feed(12)
	e.feed(9)
	e.tickAfter(1100 * time.Millisecond)
	e.restart()
}

// fullWorkload has everything issue 4 asks of a crash-point workload:
// three spills and more, a partly acknowledged segment, a recovery with a
// temp file left over, and a quarantine.
func fullWorkload(e *Engine) {
	e.feed(33)                           // three spills of 10 (memory_records), 3 left in memory
	e.tickAfter(1100 * time.Millisecond) // a fourth spill, by age
	e.deliverOnce(4)                     // the first segment, 4 of its 10 acknowledged
	e.listener.Down = true
	e.deliverOnce(7) // refused: the batch goes back (Nack), its segment stays
	e.listener.Down = false
	e.flipHeader() // a stored header breaks: the next Open salvages and quarantines
	e.killAtTempRename()
	e.feed(10) // a spill, killed at its rename: its temp file is left over for recovery
	e.drainAll(7)
	e.feed(5)
	e.restart()
	e.drainAll(7)
}

// tornScript keeps the listener slow, so that records age in memory and
// are spilled, and tears spills three ways: short writes, power losses with
// writes pending, and stored segments that lose their tail.
func tornScript(e *Engine) {
	e.setListener("slow (up to 15s)", func(l *Listener) { l.SlowMax = 15 * time.Second })
	for range 6 {
		e.runFor(e.between(time.Minute, 4*time.Minute))
		switch e.rng.IntN(3) {
		case 0:
			r := e.injectFault(fsadapter.OpWrite, syscall.EIO, 1+e.rng.IntN(2), segSuffix+tmpSuffix, 1+e.rng.IntN(4000))
			e.runUntilFired(r, 5*time.Minute)
		case 1:
			e.setListener("down", func(l *Listener) { l.Down = true })
			e.runFor(e.between(30*time.Second, 3*time.Minute))
			e.tearSegment()
			e.setListener("slow again", func(l *Listener) { l.Down = false })
		}
		e.runFor(e.between(time.Second, 20*time.Second))
		e.crashWith(fsadapter.PowerLoss)
	}
}

func bitflipScript(e *Engine) {
	for range 5 {
		e.setListener("down", func(l *Listener) { l.Down = true })
		e.runFor(e.between(time.Minute, 5*time.Minute))
		for range 1 + e.rng.IntN(3) {
			if e.rng.IntN(3) == 0 {
				e.flipHeader()
			} else {
				e.flipBit()
			}
		}
		switch e.rng.IntN(3) {
		case 0:
			e.restart()
		case 1:
			e.crashWith(fsadapter.ProcessKill)
		}
		e.setListener("up", func(l *Listener) { l.Down = false })
		e.runFor(e.between(30*time.Second, 3*time.Minute))
	}
}

func poisonSetup(s *Setup, _ *rand.Rand) {
	s.Traffic.PoisonPermille = 15
	s.Traffic.LargePermille, s.Traffic.LargeMax = 30, 24<<10
	s.Listener.MaxBatchBytes = 20 << 10
}

func poisonScript(e *Engine) {
	e.runFor(e.between(10*time.Minute, 20*time.Minute))
	e.crashWith(fsadapter.ProcessKill)
	e.runFor(e.between(5*time.Minute, 10*time.Minute))
}

// quietSetup keeps an hour of backlog under the disk cap.
func quietSetup(s *Setup, _ *rand.Rand) {
	s.Traffic.MeanGap = 3 * time.Second
	s.Traffic.BurstEvery = 0
}

func authScript(e *Engine) {
	e.runFor(5 * time.Minute)
	fix := e.now.Add(e.between(20*time.Minute, time.Hour))
	e.setListener("401: the API key was rotated", func(l *Listener) { l.AuthBroken, l.KeyFixedAt = true, fix })
	e.runFor(fix.Sub(e.now) + 10*time.Minute)
	until := e.now.Add(e.between(5*time.Minute, 20*time.Minute))
	e.setListener("302: forward.url points at a login page", func(l *Listener) { l.RedirectUntil = until })
	e.runFor(until.Sub(e.now) + 10*time.Minute)
}

func clockScript(e *Engine) {
	e.setListener("flapping every 3m, 5% throttled", func(l *Listener) { l.FlapPeriod, l.ThrottlePermille = 3*time.Minute, 50 })
	for range 8 {
		e.runFor(e.between(time.Minute, 8*time.Minute))
		step := e.between(time.Hour, 5*time.Hour)
		if e.rng.IntN(2) == 0 {
			step = -step
		}
		e.stepClock(step)
	}
	e.runFor(5 * time.Minute)
}

func stormScript(e *Engine) {
	e.setListener("slow (answers up to 15s, timeout 10s), 5% errors", func(l *Listener) { l.SlowMax, l.ErrorPermille = 15*time.Second, 50 })
	for range 40 {
		e.runFor(e.between(2*time.Second, time.Minute))
		switch r := e.rng.IntN(10); {
		case r < 7:
			e.restart()
		case r < 9:
			e.crashWith(fsadapter.ProcessKill)
		default:
			e.crashWith(fsadapter.PowerLoss)
		}
	}
}

func replaySetup(s *Setup, _ *rand.Rand) { s.Replay = true }

func replayScript(e *Engine) {
	e.setListener("flapping every 20s", func(l *Listener) { l.FlapPeriod = 20 * time.Second })
	at, ok := e.src.nextAt()
	for i := 0; ok && i < 4; i++ {
		e.runFor(e.between(time.Second, 10*time.Second))
		e.crashWith([]fsadapter.CrashKind{fsadapter.ProcessKill, fsadapter.PowerLoss}[e.rng.IntN(2)])
		at, ok = e.src.nextAt()
	}
	_ = at
	for ok && !e.halted() {
		e.runFor(time.Minute)
		_, ok = e.src.nextAt()
	}
}

// faultKinds are the operations core performs, each failed in turn.
var faultKinds = []fsadapter.OpKind{fsadapter.OpOpen, fsadapter.OpRead, fsadapter.OpWrite, fsadapter.OpSync,
	fsadapter.OpClose, fsadapter.OpStat, fsadapter.OpReaddir, fsadapter.OpMkdir, fsadapter.OpRemove, fsadapter.OpRename}

func diskFaultScript(e *Engine) {
	for _, kind := range faultKinds {
		for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
			short := 0
			if kind == fsadapter.OpWrite && e.rng.IntN(2) == 0 {
				short = 1 + e.rng.IntN(2000)
			}
			if kind == fsadapter.OpMkdir { // core creates folders only when they are missing
				e.removeFolder(deadLetterPath)
			}
			r := e.injectFault(kind, errno, 1+e.rng.IntN(3), spoolDir, short)
			if kind == fsadapter.OpMkdir {
				e.restart()
			}
			e.runUntilFired(r, 5*time.Minute)
			e.runFor(e.between(5*time.Second, 40*time.Second))
			if e.rng.IntN(6) == 0 {
				e.crashWith([]fsadapter.CrashKind{fsadapter.ProcessKill, fsadapter.PowerLoss}[e.rng.IntN(2)])
			}
			if e.rng.IntN(8) == 0 {
				e.restart()
			}
		}
	}
}

// fullDiskRecoveryScript is the smallest reproduction of known issue
// open-enospc-salvage: a backlog on disk, a damaged header, a full disk, a
// restart.
func fullDiskRecoveryScript(e *Engine) {
	e.setListener("down", func(l *Listener) { l.Down = true })
	e.runFor(2 * time.Minute)
	e.flipHeader()
	e.setQuota(1) // full: not one more segment fits
	e.restart()
	e.runFor(2 * time.Minute)
	e.setQuota(0)
	e.setListener("back up", func(l *Listener) { l.Down = false })
	e.runFor(5 * time.Minute)
}

func metaSetup(s *Setup, _ *rand.Rand) {
	s.Buffer.SeqBlock = 16
	s.Buffer.MemoryRecords = 10
}

// metaScript fails spool.meta's replacement for long enough that spills
// and deliveries go on around it (core must not hand out numbers it has
// not made durable), then kills the process while it still fails.
func metaScript(e *Engine) {
	for range 3 {
		e.runFor(e.between(10*time.Second, time.Minute))
		e.injectFault(fsadapter.OpRename, []syscall.Errno{syscall.EIO, syscall.ENOSPC}[e.rng.IntN(2)], 50+e.rng.IntN(100), "spool.meta", 0)
		e.runFor(e.between(10*time.Second, 40*time.Second))
		e.crashWith([]fsadapter.CrashKind{fsadapter.ProcessKill, fsadapter.PowerLoss}[e.rng.IntN(2)])
		e.runFor(e.between(10*time.Second, 30*time.Second))
	}
}

// randomScript mixes every verb for about an hour of virtual time.
func randomScript(e *Engine) {
	for range 12 + e.rng.IntN(12) {
		e.runFor(e.between(10*time.Second, 8*time.Minute))
		e.randomAction()
	}
}

func (e *Engine) randomAction() {
	switch e.rng.IntN(16) {
	case 0:
		e.crashWith(fsadapter.ProcessKill)
	case 1:
		e.crashWith(fsadapter.PowerLoss)
	case 2:
		e.restart()
	case 3:
		e.injectFault(faultKinds[e.rng.IntN(len(faultKinds))], []syscall.Errno{syscall.EIO, syscall.ENOSPC}[e.rng.IntN(2)], 1+e.rng.IntN(5), spoolDir, 0)
	case 4:
		e.injectFault(fsadapter.OpWrite, syscall.ENOSPC, 1+e.rng.IntN(3), segSuffix, 1+e.rng.IntN(3000))
	case 5:
		e.flipBit()
	case 6:
		e.tearSegment()
	case 7:
		e.stepClock(e.between(-3*time.Hour, 3*time.Hour))
	case 8:
		if e.quota.quota == 0 {
			e.setQuota(int64(64+e.rng.IntN(512)) << 10)
		} else {
			e.setQuota(0)
		}
	default:
		e.randomListener()
	}
}

func (e *Engine) randomListener() {
	moods := []struct {
		name string
		l    Listener
	}{
		{"healthy", Listener{}},
		{"down", Listener{Down: true}},
		{"flapping", Listener{FlapPeriod: e.between(5*time.Second, 2*time.Minute)}},
		{"slow", Listener{SlowMax: 20 * time.Second}},
		{"throttling", Listener{ThrottlePermille: 300}},
		{"erroring", Listener{ErrorPermille: 300}},
		{"413 over 8 KiB", Listener{MaxBatchBytes: 8 << 10}},
		{"401 for a while", Listener{AuthBroken: true, KeyFixedAt: e.now.Add(e.between(time.Minute, 20*time.Minute))}},
		{"302 for a while", Listener{RedirectUntil: e.now.Add(e.between(time.Minute, 10*time.Minute))}},
	}
	m := moods[e.rng.IntN(len(moods))]
	e.setListener(m.name, func(l *Listener) { *l = m.l })
}
