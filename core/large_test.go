package core

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// countingFs counts the bytes read through it.
type countingFs struct {
	afero.Fs
	read *atomic.Int64
}

type countingFile struct {
	afero.File
	read *atomic.Int64
}

func (c countingFs) Open(name string) (afero.File, error) {
	f, err := c.Fs.Open(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.read}, nil
}

func (f countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.read.Add(int64(n))
	return n, err
}

// A backlog of 100,000 segments of 5 records of 100 bytes (656 bytes each,
// 65.6 MB in all, on the real filesystem) opens by reading only their
// 56-byte headers: 5.6 MB.
func TestOpenHundredThousandSegmentsReadsHeadersOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-segment spool; run without -short")
	}
	const segments, perSeg = 100_000, 5
	mem := afero.NewBasePathFs(afero.NewOsFs(), t.TempDir())
	_ = mem.MkdirAll("/spool", 0o700)
	recs := make([]memRecord, perSeg)
	for s := range segments {
		for i := range recs {
			recs[i] = memRecord{seq: uint64(s*perSeg + i + 1), at: t0, data: record(i, 100)}
		}
		if err := afero.WriteFile(mem, "/spool/"+segName(recs[0].seq), encodeSegment(recs), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var read atomic.Int64
	start := time.Now()
	b, rep, err := Open(countingFs{mem, &read}, "/spool", testConfig(), t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("opened %d segments (%d records, %d bytes) in %s, reading %d bytes", rep.Segments, rep.Records, rep.Bytes, time.Since(start), read.Load())
	if rep.Segments != segments || rep.Records != segments*perSeg {
		t.Fatalf("report %+v", rep)
	}
	if limit := int64(segments*segmentHeaderSize + 64<<10); read.Load() > limit {
		t.Fatalf("Open read %d bytes, more than the headers (%d)", read.Load(), limit)
	}
	if bt, err := b.Next(10, 1<<20, t0); err != nil || bt.First() != 1 || len(bt.Records) != 10 {
		t.Fatalf("first batch %d records from %d: %v", len(bt.Records), bt.First(), err)
	}
}
