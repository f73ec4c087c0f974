package core

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bitville/apmd/fsadapter"
)

const benchSegmentBytes = 4 << 20

// benchConfig spills 4 MiB segments of 1 KiB records, with the disk cap out
// of the way.
func benchConfig() Config {
	c := DefaultConfig()
	c.MemoryRecords = 1 << 20
	c.MemoryBytes = benchSegmentBytes - 64<<10 // one spill = one segment of just under 4 MiB
	c.SegmentBytes = benchSegmentBytes
	c.DiskBytes = 1 << 40
	c.MinFreeBytes = 0
	c.Entropy = rand.NewChaCha8([32]byte{})
	return c
}

// BenchmarkSpill measures Add with every record spilled to the real
// filesystem, in 4 MiB segments. Compare with BenchmarkPlainWriter.
func BenchmarkSpill(b *testing.B) {
	buf, _, err := Open(fsadapter.NewOS(b.TempDir()), "/spool", benchConfig(), t0)
	if err != nil {
		b.Fatal(err)
	}
	rec := record(0, 1024)
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := buf.Add(rec, t0); err != nil {
			b.Fatal(err)
		}
	}
	if err := buf.Shutdown(t0); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if errs, _ := buf.TakeIOErrors(); len(errs) > 0 {
		b.Fatal(errs[0])
	}
}

// BenchmarkPlainWriter is the baseline: the same durable protocol (temp,
// write, fsync, close, rename, directory fsync) with the same segment
// size, writing newline-separated records and nothing else.
func BenchmarkPlainWriter(b *testing.B) {
	dir := b.TempDir()
	rec := append(record(0, 1024), '\n')
	b.SetBytes(int64(len(rec) - 1))
	seg := make([]byte, 0, benchSegmentBytes)
	n := 0
	flush := func() {
		tmp := filepath.Join(dir, fmt.Sprintf("%020d.tmp", n))
		f, err := os.Create(tmp)
		if err == nil {
			_, err = f.Write(seg)
		}
		if err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = f.Close()
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("%020d.seg", n)))
		}
		if err == nil {
			var d *os.File
			if d, err = os.Open(dir); err == nil {
				err = d.Sync()
				d.Close()
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		seg, n = seg[:0], n+1
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(seg)+len(rec) > benchSegmentBytes-64<<10 {
			flush()
		}
		seg = append(seg, rec...)
	}
	flush()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDrain measures Next+Ack over a backlog on the real filesystem,
// and the peak heap while draining: it should not grow with the backlog.
func BenchmarkDrain(b *testing.B) {
	for _, backlogMiB := range []int{16, 256, 1024} {
		b.Run(fmt.Sprintf("backlog=%dMiB", backlogMiB), func(b *testing.B) {
			records := backlogMiB << 10
			dir := b.TempDir()
			fs := fsadapter.NewOS(dir)
			buf, _, err := Open(fs, "/spool", benchConfig(), t0)
			if err != nil {
				b.Fatal(err)
			}
			rec := record(0, 1024)
			for range records {
				_ = buf.Add(rec, t0)
			}
			_ = buf.Shutdown(t0)
			b.SetBytes(int64(records) * 1024)
			b.ResetTimer()
			var peak uint64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if i > 0 { // refill for the next round
					buf, _, _ = Open(fs, "/spool", benchConfig(), t0)
					for range records {
						_ = buf.Add(rec, t0)
					}
					_ = buf.Shutdown(t0)
				}
				buf, _, err = Open(fs, "/spool", benchConfig(), t0)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				b.StartTimer()
				peak = max(peak, drainAll(b, buf))
			}
			b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MiB")
		})
	}
}

// drainAll acknowledges everything in batches of 1000 records and returns
// the peak live heap, measured after a GC every 64 batches (64 MiB): what
// the drain holds, not garbage the collector has yet to free.
func drainAll(b *testing.B, buf *Buffer) uint64 {
	var ms runtime.MemStats
	var peak uint64
	for i := 0; ; i++ {
		bt, err := buf.Next(1000, 1<<20, t0)
		if err != nil {
			b.Fatal(err)
		}
		if len(bt.Records) == 0 {
			return peak
		}
		if err := buf.Ack(t0); err != nil {
			b.Fatal(err)
		}
		if i%64 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
}
