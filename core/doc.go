// Package core is the pure state machine of bitville-apmd: a durable local
// queue of records that spills from memory to disk and hands records out in
// sequence order, plus the framing of the ingest socket.
//
// Core does no I/O of its own except through the afero.Fs it is given,
// never reads a clock (every call takes the current time; a step back of
// the host's clock is absorbed, so time never goes back and timers never
// stall), draws randomness only from the
// Config.Entropy source, starts no goroutine and takes no lock. The same code
// therefore runs in the native daemon, in the simulator and under wasip1.
//
// # The drive loop
//
// One owner goroutine drives a Buffer; a host writes roughly (clock is the
// host's time.Now: core itself never reads a clock):
//
//	b, report, err := core.Open(fs, "/var/lib/bitville-apm", cfg, clock())
//	for {
//		select {
//		case rec := <-ingest:                 // records from the socket readers
//			b.Add(rec, clock())             // never blocks on disk or network
//		case <-ticker.C:                      // at least every min(MaxMemoryAge/4, 250ms)
//			b.Tick(clock())
//		case res := <-forwarded:              // the answer to the batch in flight
//			switch {
//			case res.ok:
//				b.Ack(clock())              // delivered: deleted from memory or disk
//			case res.poison:
//				b.DeadLetter(core.DropPoison, clock())
//			default:
//				b.Nack(clock())             // back to the front, retried later
//			}
//		case <-stop:
//			return b.Shutdown(clock())      // spills memory and the batch in flight
//		}
//		if idle {
//			batch, _ := b.Next(maxRecords, maxBytes, clock()) // lowest unacknowledged, no gaps
//			// POST batch.Records to the listener ...
//		}
//	}
//
// Ordering duties, which the crash tests check at every filesystem
// operation:
//   - a segment is durable (fsync of file and directory) BEFORE its records
//     leave memory;
//   - a sequence number is reserved in a durable spool.meta BEFORE it reaches
//     a segment or Next;
//   - a segment file is removed only AFTER the listener acknowledged every
//     record in it;
//   - a damaged segment's good records are in a fresh durable segment BEFORE
//     the damaged file moves to quarantine/.
//
// Accounting, after every call (Stats.CheckConservation):
//
//	recovered + accepted = delivered + dropped + memory + disk + in flight
//
// The segment format is described byte by byte in FORMAT.md.
package core
