package core

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// WhenFull says which records give way when the disk cap is reached.
type WhenFull string

// The two policies of DESIGN 4.3.
const (
	DropOldest WhenFull = "drop_oldest" // delete the oldest segment not in flight
	DropNewest WhenFull = "drop_newest" // drop the records that were about to be spilled
)

// Config holds every limit of a Buffer. All sizes are bytes, all counts are
// records; zero values are invalid except where a field says otherwise.
type Config struct {
	MemoryRecords   int           // spill when this many records are in memory
	MemoryBytes     int64         // spill when the records in memory hold this many bytes
	MaxMemoryAge    time.Duration // spill when the oldest unspilled record is this old
	SegmentBytes    int64         // a segment file holds at most this many bytes (one larger record gets a segment of its own)
	DiskBytes       int64         // segments and temp files together stay under this
	WhenFull        WhenFull      // what gives way at DiskBytes
	QuarantineBytes int64         // cap of quarantine/ (oldest files removed first)
	DeadLetterBytes int64         // cap of dead-letter/ (oldest files removed first)
	MinFreeBytes    int64         // keep this much free on the filesystem (0: no reserve)
	MaxRecordBytes  int           // a record longer than this is refused by Add
	SeqBlock        uint64        // sequence numbers reserved in spool.meta per write
	SpillRetry      time.Duration // after a failed spill, wait this long before the next try
	ReadGiveUp      time.Duration // a segment unreadable for this long (3 tries at least) goes to quarantine/

	// Entropy makes agent IDs. The host passes crypto/rand.Reader; the
	// simulator passes a seeded source. Required.
	Entropy io.Reader

	// Bugs plants known bugs so that tests can show the crash and
	// simulation checks catch them. Never set it outside tests.
	Bugs Bug
}

// Bug is a set of planted bugs, for testing the tests only.
type Bug uint32

// The planted bugs.
const (
	BugSkipDirSync      Bug = 1 << iota // a spill renames its segment without fsyncing the directory
	BugDeleteBeforeAck                  // a segment is deleted when its records are handed out, not when acknowledged
	BugCountTwice                       // an accepted record is counted twice
	BugSeqBeforeDurable                 // sequence numbers reach a segment before their block is durable
)

// Has reports whether bug b is planted.
func (set Bug) Has(b Bug) bool { return set&b != 0 }

// DefaultConfig returns the limits the daemon ships with.
func DefaultConfig() Config {
	return Config{
		MemoryRecords:   10000,
		MemoryBytes:     64 << 20,
		MaxMemoryAge:    time.Second,
		SegmentBytes:    4 << 20,
		DiskBytes:       2 << 30,
		WhenFull:        DropOldest,
		QuarantineBytes: 256 << 20,
		DeadLetterBytes: 256 << 20,
		MinFreeBytes:    64 << 20,
		MaxRecordBytes:  1 << 20,
		SeqBlock:        1 << 20,
		SpillRetry:      time.Second,
		ReadGiveUp:      time.Minute,
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid buffer configuration")

// Validate checks every limit and their relations, naming the first bad one.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.MemoryRecords < 1:
		return bad("buffer.memory_records", "must be at least 1, got %d", c.MemoryRecords)
	case c.MaxRecordBytes < 1:
		return bad("ingest.max_record_bytes", "must be at least 1, got %d", c.MaxRecordBytes)
	case c.MemoryBytes < int64(c.MaxRecordBytes):
		return bad("buffer.memory_bytes", "must hold at least one record of max_record_bytes (%d), got %d", c.MaxRecordBytes, c.MemoryBytes)
	case c.MaxMemoryAge <= 0:
		return bad("buffer.max_memory_age", "must be positive, got %s", c.MaxMemoryAge)
	case c.SegmentBytes < segmentHeaderSize+frameHeaderSize+1:
		return bad("buffer.segment_bytes", "must be at least %d, got %d", segmentHeaderSize+frameHeaderSize+1, c.SegmentBytes)
	case c.DiskBytes < c.SegmentBytes:
		return bad("buffer.disk_bytes", "must be at least segment_bytes (%d), got %d", c.SegmentBytes, c.DiskBytes)
	case c.WhenFull != DropOldest && c.WhenFull != DropNewest:
		return bad("buffer.when_full", "must be %q or %q, got %q", DropOldest, DropNewest, c.WhenFull)
	case c.QuarantineBytes < 0 || c.DeadLetterBytes < 0 || c.MinFreeBytes < 0:
		return bad("buffer.quarantine_bytes", "must not be negative, nor dead_letter_bytes and min_free_bytes")
	case c.SeqBlock < 1 || c.SeqBlock > 1<<40:
		return bad("buffer.seq_block", "must be between 1 and 2^40, got %d", c.SeqBlock)
	case c.SpillRetry <= 0:
		return bad("buffer.spill_retry", "must be positive, got %s", c.SpillRetry)
	case c.ReadGiveUp <= 0:
		return bad("buffer.read_give_up", "must be positive, got %s", c.ReadGiveUp)
	case c.Entropy == nil:
		return bad("entropy", "must be set (crypto/rand.Reader in a host)")
	}
	return nil
}
