package sim

import (
	"fmt"
	"time"

	"github.com/bitville/apmd/core"
)

// Violation is one broken invariant: the step it was seen at, which
// invariant, and what was seen.
type Violation struct {
	Step      int
	Invariant string
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("step %d: %s: %s", v.Step, v.Invariant, v.Detail)
}

// Result is what one run of a scenario with one seed found.
type Result struct {
	Scenario string
	Seed     uint64

	Steps       int
	Records     int // records accepted by the buffer (ledger), over all processes
	Rejected    int // lines the framing rejected
	Delivered   int // distinct records the listener acknowledged at least once
	Redelivered int // deliveries beyond the first
	LostToCrash int // never delivered, lost while in memory at a crash
	Crashes     int // process kills and power losses
	Restarts    int // graceful stops and starts
	CrashPoints int // crash points explored by enumeration
	FaultsFired int // injected filesystem faults that fired
	// FaultsByKind counts them by fsadapter.OpKind (index) and errno
	// (EIO first, ENOSPC second, anything else third).
	FaultsByKind [][3]int

	// Dropped sums core's drop counters over every process, in
	// core.DropReasons order.
	Dropped []uint64

	VirtualTime time.Duration
	Violations  []Violation
	// ViolationsTotal counts every violation; Violations keeps the first
	// maxViolations of them.
	ViolationsTotal int

	// Notes are observations that are not violations: behaviour worth an
	// engineer's eye (at most maxViolations of them).
	Notes []string

	// Digest is the hex SHA-256 of the canonical trace.
	Digest string
}

// DroppedBy returns the drop count for one reason.
func (r Result) DroppedBy(reason core.DropReason) uint64 {
	for i, dr := range core.DropReasons {
		if dr == reason && i < len(r.Dropped) {
			return r.Dropped[i]
		}
	}
	return 0
}

// maxViolations bounds what a run keeps: the first few say what broke, the
// count says how often.
const maxViolations = 20
