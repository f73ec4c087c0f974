package core

// RejectReason says why a line from a client got no sequence number.
// The values are a contract (DESIGN 4.5): metrics and logs use them verbatim.
type RejectReason string

// Rejection reasons, as DESIGN 4.5 names them.
const (
	RejectOversized   RejectReason = "oversized"    // longer than max_record_bytes, discarded up to its newline
	RejectInvalidJSON RejectReason = "invalid_json" // not valid JSON
	RejectNotObject   RejectReason = "not_object"   // valid JSON, but not an object
	RejectTruncated   RejectReason = "truncated"    // unterminated when the connection closed
	RejectOverload    RejectReason = "overload"     // the host's ingest queue was full
)

// RejectReasons lists every rejection reason in a fixed order, for hosts that
// pre-register metrics.
var RejectReasons = []RejectReason{RejectOversized, RejectInvalidJSON, RejectNotObject, RejectTruncated, RejectOverload}

// DropReason says why an accepted record will never be delivered.
type DropReason string

// Drop reasons, as DESIGN 4.5 names them.
const (
	DropDiskFullOldest    DropReason = "disk_full_oldest"
	DropDiskFullNewest    DropReason = "disk_full_newest"
	DropMemoryFull        DropReason = "memory_full"
	DropTooLarge          DropReason = "too_large"
	DropPoison            DropReason = "poison"
	DropQuarantineEvicted DropReason = "quarantine_evicted"
	DropDeadLetterEvicted DropReason = "dead_letter_evicted"
	DropCorrupt           DropReason = "corrupt"
)

// DropReasons lists every drop reason in a fixed order.
var DropReasons = dropIndex[:]
