// Package sim is the simulator's engine: it drives the code the daemon runs
// (core's framing Decoder, Buffer and delivery Policy) with a virtual clock,
// one seeded random source, a simulated listener and fsadapter's faulty,
// crashable filesystem, and checks invariants after every step against its
// own ledger of every record.
//
//	r := sim.Run(scenario, seed, sim.Options{Trace: os.Stdout})
//	// r.Violations, r.CrashPoints, r.Digest, ...
//
// # Determinism
//
// The engine is a single-threaded state machine, so that the main
// (simulate/main.go), the tests and a wasip1 guest get byte-identical
// traces for the same scenario and seed:
//   - it never reads a clock: time is a virtual time.Time that only the
//     engine advances; the host clock handed to core is that plus a step
//     the scenario may change (clock-jumps);
//   - every random draw comes from one ChaCha8 stream seeded by the
//     scenario's name and the seed; core's Entropy, the policy's jitter and
//     CrashFS's tears get sub-streams derived from the same key;
//   - it starts no goroutine, uses no os/exec, touches no real file, and never lets map
//     iteration order reach the trace: maps are only looked up; whatever is
//     walked is a slice.
//
// A run is a Scenario's script (verbs: run traffic for a while, change the
// listener, arm a filesystem fault or a quota, damage a stored segment,
// crash, restart gracefully, step the clock) followed by a final phase that
// clears every fault, brings the listener back and drains the backlog. Each
// step of the event loop (a socket read through the decoder, a tick, a
// batch sent, an answer applied, a crash, an Open) writes one trace line:
// the event and the resulting state. The SHA-256 of all lines is the run's
// digest. A scenario with Enumerate set is instead run once to count its
// filesystem operations, then once per operation and crash mode, crashed at
// that operation (crashpoints.go).
//
// # The ledger and the invariants
//
// The engine never trusts core's counters for the promise that no record is
// lost silently. Every record has an identity (its bytes, which the
// synthetic generator makes unique) and, once seen in a batch or a segment,
// its sequence number. For every daemon process the engine knows the
// records it started with (found by the engine's own parse of the segment
// files, disk.go), the records it accepted, the records it acknowledged
// and dead-lettered, and which records core holds in memory (memory.go).
// Invariants, by the name violations carry:
//
//   - conservation: core's per-process identity (Stats.CheckConservation)
//     after every step; ledger-accepted, ledger-delivered,
//     ledger-dead-letter: core's counters equal the ledger's;
//   - no-silent-loss, every-record-accounted: when a process ends, every
//     record it had is on disk, acknowledged, dead-lettered, damaged by
//     the simulator, lost at a crash while in memory (below), or covered by
//     that process's own drop counters (memory_full, disk_full_*, corrupt,
//     whose records only core can name); at the end every record was
//     delivered or has one of those fates;
//   - crash-loss-bound, crash-loss-age: a crash loses only records core
//     reported in memory, at most memory_records (plus the batch in
//     flight) and memory_bytes, none older than max_memory_age plus one
//     tick unless spills were obstructed (a failure, no room, a fault, a
//     clock step) since it arrived;
//   - seq-unique: a sequence number never names two records (per agent,
//     across every crash and restart), nor a record two numbers;
//     batch-no-gap; first-delivery-order: first deliveries come in
//     sequence order;
//   - received: nothing handed out or found on disk that no process
//     accepted; no-temp-read: no read of a *.tmp file;
//   - open-after-fault, drain, livelock: Open succeeds once faults stop, the
//     backlog drains with a healthy listener, time never stops moving;
//   - memory-cap, memory-age, disk-cap, folder-cap: the caps hold, measured
//     on the files themselves as well as by core's gauges;
//   - framing, poison, too-large, recovery, graceful-stop, memory-gauge:
//     the decoder says what the generator wrote; only poison and too large
//     records are dead-lettered; Open recovers every well-formed record; a
//     Shutdown that reports success kept everything; core's memory gauges
//     match a history it could have had.
package sim
