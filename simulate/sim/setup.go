package sim

import (
	"time"

	"github.com/bitville/apmd/core"
)

// epoch is where every run's virtual clock starts.
var epoch = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// tickInterval is how often the shell ticks: min(max_memory_age/4, 250ms).
func tickInterval(cfg core.Config) time.Duration {
	return max(min(cfg.MaxMemoryAge/4, 250*time.Millisecond), time.Millisecond)
}

// Setup is what a scenario configures before its script runs.
type Setup struct {
	Buffer   core.Config // Entropy and Bugs are set by the engine
	Policy   core.PolicyConfig
	Traffic  Traffic
	Listener Listener
	Replay   bool // replay Options.Recording instead of synthetic traffic
}

// DefaultSetup is small enough for many spills, segments and sequence
// blocks in a short run: 64 records or 128 KiB in memory, segments of
// 16 KiB, a 2 MiB disk cap, sequence blocks of 200.
func DefaultSetup() Setup {
	b := core.DefaultConfig()
	b.MemoryRecords = 64
	b.MemoryBytes = 128 << 10
	b.MaxMemoryAge = time.Second
	b.SegmentBytes = 16 << 10
	b.DiskBytes = 2 << 20
	b.QuarantineBytes = 128 << 10
	b.DeadLetterBytes = 128 << 10
	b.MinFreeBytes = 0
	b.MaxRecordBytes = 32 << 10
	b.SeqBlock = 200
	b.SpillRetry = time.Second
	b.ReadGiveUp = time.Minute

	p := core.DefaultPolicyConfig()
	p.BatchRecords = 40
	p.BatchBytes = 64 << 10
	p.OpenFor = 5 * time.Second
	p.MaxOpenFor = 5 * time.Minute
	p.BackoffMin = 100 * time.Millisecond
	p.BackoffMax = 30 * time.Second
	p.ConfigRetry = 30 * time.Second
	return Setup{Buffer: b, Policy: p, Traffic: DefaultTraffic()}
}
