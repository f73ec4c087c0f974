package core_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/spf13/afero"
)

// The drive loop a host writes: Add records as they arrive, Tick
// regularly, hand batches to the listener with Next, and resolve each with
// Ack (or Nack to retry, or DeadLetter for poison); Shutdown at the end.
func Example() {
	fs := afero.NewMemMapFs() // the daemon uses fsadapter.NewOS(dir)
	cfg := core.DefaultConfig()
	cfg.Entropy = rand.Reader
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	buf, report, err := core.Open(fs, "/spool", cfg, now)
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	fmt.Println("recovered:", report.Records)

	for i := range 5 {
		_ = buf.Add(fmt.Appendf(nil, `{"correlation_id":"req-%d"}`, i), now)
	}
	now = now.Add(250 * time.Millisecond)
	_ = buf.Tick(now)

	batch, _ := buf.Next(3, 1<<20, now) // POST these to the listener
	fmt.Printf("batch %d-%d: %s\n", batch.First(), batch.Last(), batch.Records[0].Data)
	_ = buf.Nack(now) // the listener answered 503: retry later
	batch, _ = buf.Next(3, 1<<20, now)
	_ = buf.Ack(now) // 2xx: delivered
	fmt.Printf("delivered %d-%d\n", batch.First(), batch.Last())

	if err := buf.Shutdown(now); err != nil { // 2 records spilled for the next start
		fmt.Println("shutdown:", err)
	}
	s := buf.Stats(now)
	fmt.Println("accepted", s.Accepted, "delivered", s.Delivered, "on disk", s.DiskRecords, "conserved:", s.CheckConservation() == nil)

	buf, report, _ = core.Open(fs, "/spool", cfg, now)
	fmt.Println("recovered after restart:", report.Records)
	// Output:
	// recovered: 0
	// batch 1-3: {"correlation_id":"req-0"}
	// delivered 1-3
	// accepted 5 delivered 3 on disk 2 conserved: true
	// recovered after restart: 2
}
