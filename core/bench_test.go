package core

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/bitville/apmd/fsadapter"
)

const benchSegmentBytes = 4 << 20

// benchRecordsPerSegment 1 KiB records fill one 4 MiB segment:
// 56 + 4017 x (20 + 1024) = 4,193,804 bytes.
const benchRecordsPerSegment = 4017

// benchConfig spills exactly one full 4 MiB segment of 1 KiB records each
// time, with the disk cap out of the way. (A memory limit just above one
// segment would spill a full segment and a tiny one each time: twice the
// fsyncs for the same bytes.)
func benchConfig() Config {
	c := DefaultConfig()
	c.MemoryRecords = benchRecordsPerSegment
	c.MemoryBytes = 64 << 20
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
	w := newPlainWriter(b, b.TempDir())
	rec := record(0, 1024)
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.add(rec)
	}
	w.flush()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// plainWriter writes segments of newline-separated records by the durable
// protocol, with no framing, checksum or index.
type plainWriter struct {
	b   *testing.B
	dir string
	seg []byte
	n   int
}

func newPlainWriter(b *testing.B, dir string) *plainWriter {
	return &plainWriter{b: b, dir: dir, seg: make([]byte, 0, benchSegmentBytes)}
}

func (w *plainWriter) add(rec []byte) {
	if len(w.seg)+len(rec)+1 > benchSegmentBytes {
		w.flush()
	}
	w.seg = append(append(w.seg, rec...), '\n')
}

func (w *plainWriter) flush() {
	tmp := filepath.Join(w.dir, fmt.Sprintf("%020d.tmp", w.n))
	f, err := os.Create(tmp)
	if err == nil {
		_, err = f.Write(w.seg)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(w.dir, fmt.Sprintf("%020d.seg", w.n)))
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(w.dir); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		w.b.Fatal(err)
	}
	w.seg, w.n = w.seg[:0], w.n+1
}

// BenchmarkSpillVsPlain alternates the two writers in rounds of 32 MiB and
// times each apart, so that both see the same disk weather (this virtual
// disk's throughput drifts by 2x between runs): it reports both rates and
// their ratio, the figure the target is about (spill >= 0.8x plain).
func BenchmarkSpillVsPlain(b *testing.B) {
	const roundRecords = 32 << 10 // 32 MiB of 1 KiB records
	buf, _, err := Open(fsadapter.NewOS(b.TempDir()), "/spool", benchConfig(), t0)
	if err != nil {
		b.Fatal(err)
	}
	plain := newPlainWriter(b, b.TempDir())
	rec := record(0, 1024)
	var spillTime, plainTime time.Duration
	spillRound := func() {
		start := time.Now()
		for range roundRecords {
			if err := buf.Add(rec, t0); err != nil {
				b.Fatal(err)
			}
		}
		spillTime += time.Since(start)
	}
	plainRound := func() {
		start := time.Now()
		for range roundRecords {
			plain.add(rec)
		}
		plainTime += time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		if i%2 == 0 { // alternate who goes first: the disk's state after one writer is the other's start
			spillRound()
			plainRound()
		} else {
			plainRound()
			spillRound()
		}
	}
	mb := float64(b.N*roundRecords*len(rec)) / 1e6
	b.ReportMetric(mb/spillTime.Seconds(), "spill-MB/s")
	b.ReportMetric(mb/plainTime.Seconds(), "plain-MB/s")
	b.ReportMetric(plainTime.Seconds()/spillTime.Seconds(), "spill/plain")
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
