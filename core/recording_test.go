package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/")

// recT0 is the time recording tests start at.
var recT0 = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)

// encodeRecording writes a recording of evs and returns its bytes and the
// offset at which each event ends (ends[i] is the end of evs[i]).
func encodeRecording(t testing.TB, evs []RecEvent) (file []byte, ends []int) {
	t.Helper()
	var buf bytes.Buffer
	rw, err := NewRecordingWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() != RecordingHeaderSize {
		t.Fatalf("header is %d bytes, want %d", buf.Len(), RecordingHeaderSize)
	}
	for i, ev := range evs {
		n, err := rw.Write(ev)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := EncodedRecEventSize(ev); n != want {
			t.Fatalf("event %d: Write reported %d bytes, EncodedRecEventSize says %d", i, n, want)
		}
		ends = append(ends, buf.Len())
		if i > 0 && ends[i]-ends[i-1] != n || i == 0 && ends[0]-RecordingHeaderSize != n {
			t.Fatalf("event %d: Write reported %d bytes but the file grew otherwise", i, n)
		}
	}
	return buf.Bytes(), ends
}

// readRecording reads every event of file and the error that ended it.
func readRecording(file []byte, r io.Reader) ([]RecEvent, *RecordingReader, error) {
	if r == nil {
		r = bytes.NewReader(file)
	}
	rr, err := NewRecordingReader(r)
	if err != nil {
		return nil, nil, err
	}
	var evs []RecEvent
	for {
		ev, err := rr.Next()
		if err != nil {
			return evs, rr, err
		}
		evs = append(evs, ev)
	}
}

func sameRecEvent(a, b RecEvent) bool {
	return a.Kind == b.Kind && a.Conn == b.Conn && a.At.Equal(b.At) && bytes.Equal(a.Data, b.Data)
}

func checkRecEvents(t *testing.T, what string, got, want []RecEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !sameRecEvent(got[i], want[i]) {
			t.Fatalf("%s: event %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// randomRecEvents makes n events over a few interleaved connections, each
// opened before use and most closed, with data chunks of random sizes.
func randomRecEvents(rng *rand.Rand, n int) []RecEvent {
	var evs []RecEvent
	var open []uint64
	next := uint64(1)
	at := recT0
	for len(evs) < n {
		at = at.Add(time.Duration(rng.IntN(5000)) * time.Microsecond)
		switch r := rng.IntN(10); {
		case len(open) == 0 || r == 0 && len(open) < 5:
			c := next<<32 | uint64(rng.Uint32()) // large IDs exercise all 8 bytes
			next++
			open = append(open, c)
			evs = append(evs, RecEvent{Kind: RecOpen, Conn: c, At: at})
		case r == 1:
			i := rng.IntN(len(open))
			evs = append(evs, RecEvent{Kind: RecClose, Conn: open[i], At: at})
			open = append(open[:i], open[i+1:]...)
		default:
			size := rng.IntN(300)
			if rng.IntN(20) == 0 {
				size = rng.IntN(70000)
			}
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			evs = append(evs, RecEvent{Kind: RecData, Conn: open[rng.IntN(len(open))], At: at, Data: data})
		}
	}
	return evs
}

// choppyReader returns at most a random number of bytes per Read, as a pipe
// or a slow disk might.
type choppyReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *choppyReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1+c.rng.IntN(min(len(p), 97))]
	}
	return c.r.Read(p)
}

func TestRecordingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	evs := randomRecEvents(rng, 2000)
	file, ends := encodeRecording(t, evs)
	if ends[len(ends)-1] != len(file) {
		t.Fatalf("file is %d bytes, events end at %d", len(file), ends[len(ends)-1])
	}
	got, rr, err := readRecording(file, nil)
	if err != io.EOF {
		t.Fatalf("read ended with %v, want io.EOF", err)
	}
	checkRecEvents(t, "whole reads", got, evs)
	if rr.Offset() != int64(len(file)) {
		t.Errorf("Offset = %d at the end, want %d", rr.Offset(), len(file))
	}
	if _, err := rr.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF again", err)
	}

	// The underlying reader delivering tiny, random pieces changes nothing.
	got, _, err = readRecording(nil, &choppyReader{bytes.NewReader(file), rng})
	if err != io.EOF {
		t.Fatalf("choppy read ended with %v, want io.EOF", err)
	}
	checkRecEvents(t, "choppy reads", got, evs)

	// Times read back in UTC.
	if loc := got[0].At.Location(); loc != time.UTC {
		t.Errorf("At location = %v, want UTC", loc)
	}
}

func TestRecordingNextReturnsACopy(t *testing.T) {
	evs := []RecEvent{
		{Kind: RecOpen, Conn: 1, At: recT0},
		{Kind: RecData, Conn: 1, At: recT0, Data: []byte("first")},
		{Kind: RecData, Conn: 1, At: recT0, Data: []byte("other")},
	}
	file, _ := encodeRecording(t, evs)
	rr, err := NewRecordingReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var kept [][]byte
	for range evs {
		ev, err := rr.Next()
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, ev.Data)
	}
	if string(kept[1]) != "first" || string(kept[2]) != "other" {
		t.Fatalf("kept data %q, %q: a later Next overwrote an earlier event", kept[1], kept[2])
	}
	if kept[0] != nil {
		t.Errorf("open event has Data %q, want nil", kept[0])
	}
}

// smallRecording is a few events of every kind, for the byte-by-byte tests.
func smallRecording() []RecEvent {
	return []RecEvent{
		{Kind: RecOpen, Conn: 7, At: recT0},
		{Kind: RecData, Conn: 7, At: recT0.Add(time.Millisecond), Data: []byte(`{"a":1}` + "\n" + `{"b"`)},
		{Kind: RecOpen, Conn: 8, At: recT0.Add(2 * time.Millisecond)},
		{Kind: RecData, Conn: 7, At: recT0.Add(3 * time.Millisecond), Data: []byte(`:2}` + "\n")},
		{Kind: RecData, Conn: 8, At: recT0.Add(4 * time.Millisecond), Data: []byte{}},
		{Kind: RecClose, Conn: 7, At: recT0.Add(5 * time.Millisecond)},
		{Kind: RecData, Conn: 8, At: recT0.Add(6 * time.Millisecond), Data: []byte("x")},
	}
}

func TestRecordingTruncatedAtEveryOffset(t *testing.T) {
	evs := smallRecording()
	file, ends := encodeRecording(t, evs)
	for cut := 0; cut <= len(file); cut++ {
		got, rr, err := readRecording(file[:cut], nil)
		if cut < RecordingHeaderSize {
			if !errors.Is(err, ErrRecordingTruncated) {
				t.Fatalf("cut at %d (in the header): %v, want ErrRecordingTruncated", cut, err)
			}
			continue
		}
		complete, boundary := 0, cut == RecordingHeaderSize
		for _, end := range ends {
			if end <= cut {
				complete++
				boundary = boundary || end == cut
			}
		}
		checkRecEvents(t, fmt.Sprintf("cut at %d", cut), got, evs[:complete])
		wantOff := int64(RecordingHeaderSize)
		if complete > 0 {
			wantOff = int64(ends[complete-1])
		}
		if rr.Offset() != wantOff {
			t.Errorf("cut at %d: Offset = %d, want %d", cut, rr.Offset(), wantOff)
		}
		if boundary {
			if err != io.EOF {
				t.Errorf("cut at %d (an event boundary): %v, want io.EOF", cut, err)
			}
			continue
		}
		if !errors.Is(err, ErrRecordingTruncated) {
			t.Errorf("cut at %d: %v, want ErrRecordingTruncated", cut, err)
		}
		if want := fmt.Sprintf("offset %d", wantOff); !strings.Contains(err.Error(), want) {
			t.Errorf("cut at %d: error %q does not name %q", cut, err, want)
		}
		if _, again := rr.Next(); again != err {
			t.Errorf("cut at %d: Next after the error = %v, want the same error", cut, again)
		}
	}
}

func TestRecordingCorruptByte(t *testing.T) {
	evs := smallRecording()
	file, ends := encodeRecording(t, evs)
	for off := range file {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(file)
			bad[off] ^= mask
			got, rr, err := readRecording(bad, nil)
			what := fmt.Sprintf("byte %d ^ %#x", off, mask)
			var verr *RecordingVersionError
			switch {
			case off >= 8 && off < 10:
				if !errors.As(err, &verr) {
					t.Fatalf("%s (version): %v, want a *RecordingVersionError", what, err)
				}
				continue
			case off < RecordingHeaderSize:
				if !errors.Is(err, ErrRecordingCorrupt) || rr != nil {
					t.Fatalf("%s (header): %v, want ErrRecordingCorrupt", what, err)
				}
				continue
			}
			complete := 0
			for complete < len(ends) && ends[complete] <= off {
				complete++
			}
			checkRecEvents(t, what, got, evs[:complete])
			if !errors.Is(err, ErrRecordingCorrupt) {
				t.Fatalf("%s: %v, want ErrRecordingCorrupt", what, err)
			}
		}
	}
}

// recEventWithLength builds a data event header claiming n bytes, with a
// valid header CRC, as a bit flip that happens to match could.
func recEventWithLength(n uint32) []byte {
	le := binary.LittleEndian
	b := []byte{byte(RecData)}
	b = le.AppendUint64(b, 1)
	b = le.AppendUint64(b, uint64(recT0.UnixNano()))
	b = le.AppendUint32(b, n)
	return le.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func TestRecordingHugeLengthIsNotAllocated(t *testing.T) {
	file, _ := encodeRecording(t, smallRecording()[:1])
	for _, tc := range []struct {
		n    uint32
		want error
	}{
		{MaxRecordingChunk + 1, ErrRecordingCorrupt},
		{1<<32 - 1, ErrRecordingCorrupt},
		{MaxRecordingChunk, ErrRecordingTruncated}, // legal length, file ends early
	} {
		bad := append(bytes.Clone(file), recEventWithLength(tc.n)...)
		bad = append(bad, "a few bytes"...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, _, err := readRecording(bad, nil)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, tc.want) || len(got) != 1 {
			t.Errorf("length %d: %d events then %v, want 1 event then %v", tc.n, len(got), err, tc.want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("length %d: reading allocated %d bytes", tc.n, alloc)
		}
	}
}

func TestRecordingRefusesOtherFiles(t *testing.T) {
	file, _ := encodeRecording(t, smallRecording())
	le := binary.LittleEndian

	v2 := bytes.Clone(file)
	le.PutUint16(v2[8:10], 2)
	le.PutUint32(v2[12:16], crc32.Checksum(v2[:12], crc32.MakeTable(crc32.Castagnoli)))
	_, err := NewRecordingReader(bytes.NewReader(v2))
	var verr *RecordingVersionError
	if !errors.As(err, &verr) || verr.Version != 2 {
		t.Fatalf("version 2: %v, want *RecordingVersionError{2}", err)
	}
	if !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version error %q does not name the version", err)
	}

	if _, err := NewRecordingReader(strings.NewReader("BVAPMSEG\x01\x00\x00\x00\x00\x00\x00\x00 and more")); !errors.Is(err, ErrRecordingCorrupt) {
		t.Errorf("a segment file: %v, want ErrRecordingCorrupt", err)
	}
	if _, err := NewRecordingReader(strings.NewReader("")); !errors.Is(err, ErrRecordingTruncated) {
		t.Errorf("an empty file: %v, want ErrRecordingTruncated", err)
	}
	boom := errors.New("disk on fire")
	if _, err := NewRecordingReader(iotestErrReader{boom}); !errors.Is(err, boom) || errors.Is(err, ErrRecordingTruncated) {
		t.Errorf("a failing reader: %v, want its own error", err)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestRecordingWriteRefusesInvalidEvents(t *testing.T) {
	var buf bytes.Buffer
	rw, err := NewRecordingWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []RecEvent{
		{Kind: RecData, Conn: 1, At: recT0, Data: make([]byte, MaxRecordingChunk+1)},
		{Kind: RecOpen, Conn: 1, At: recT0, Data: []byte("x")},
		{Kind: RecClose, Conn: 1, At: recT0, Data: []byte("x")},
		{Kind: 0, Conn: 1, At: recT0},
		{Kind: 4, Conn: 1, At: recT0},
		{Kind: RecOpen, Conn: 1},                                                  // zero time
		{Kind: RecOpen, Conn: 1, At: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, // past int64 ns
	} {
		n, err := rw.Write(ev)
		if !errors.Is(err, ErrRecordingEventInvalid) || n != 0 {
			t.Errorf("Write(%s, %d bytes, %v) = %d, %v; want 0, ErrRecordingEventInvalid", ev.Kind, len(ev.Data), ev.At, n, err)
		}
	}
	if buf.Len() != RecordingHeaderSize {
		t.Fatalf("refused events wrote %d bytes", buf.Len()-RecordingHeaderSize)
	}
	// The writer is still usable, and the largest chunk is fine.
	big := RecEvent{Kind: RecData, Conn: 1, At: recT0, Data: bytes.Repeat([]byte("z"), MaxRecordingChunk)}
	if n, err := rw.Write(big); err != nil || n != EncodedRecEventSize(big) {
		t.Fatalf("Write(max chunk) = %d, %v", n, err)
	}
	got, _, err := readRecording(buf.Bytes(), nil)
	if err != io.EOF {
		t.Fatal(err)
	}
	checkRecEvents(t, "max chunk", got, []RecEvent{big})
}

// failingWriter accepts limit bytes, then fails (a full disk).
type failingWriter struct {
	buf   bytes.Buffer
	limit int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	room := w.limit - w.buf.Len()
	if len(p) <= room {
		return w.buf.Write(p)
	}
	w.buf.Write(p[:max(room, 0)])
	return max(room, 0), errors.New("no space left")
}

func TestRecordingWriterFailureIsSticky(t *testing.T) {
	if _, err := NewRecordingWriter(&failingWriter{limit: 5}); err == nil {
		t.Fatal("NewRecordingWriter on a failing writer succeeded")
	}
	evs := smallRecording()
	fw := &failingWriter{limit: RecordingHeaderSize + EncodedRecEventSize(evs[0]) + 10}
	rw, err := NewRecordingWriter(fw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Write(evs[0]); err != nil {
		t.Fatal(err)
	}
	n, err := rw.Write(evs[1])
	if err == nil || n != 10 {
		t.Fatalf("Write past the limit = %d, %v; want 10 and an error", n, err)
	}
	fw.limit = 1 << 20
	if _, err2 := rw.Write(evs[2]); err2 == nil {
		t.Fatal("Write after a failure succeeded: it would follow a partial event")
	}
	got, _, err := readRecording(fw.buf.Bytes(), nil)
	if !errors.Is(err, ErrRecordingTruncated) {
		t.Fatalf("reading after a failed write: %v, want ErrRecordingTruncated", err)
	}
	checkRecEvents(t, "after a failed write", got, evs[:1])
}

// TestRecordingResume is what a host does after a crash: scan the file, cut
// it at End, append with ResumeRecordingWriter, numbering connections above
// MaxConn.
func TestRecordingResume(t *testing.T) {
	evs := smallRecording()
	file, ends := encodeRecording(t, evs)
	crashed := file[:ends[2]+7] // a crash in the middle of event 3
	tail, err := ScanRecording(bytes.NewReader(crashed))
	if err != nil || !errors.Is(tail.Damage, ErrRecordingTruncated) || tail.End != int64(ends[2]) || tail.Events != 3 || tail.MaxConn != 8 {
		t.Fatalf("ScanRecording = %+v, %v; want End %d, 3 events, MaxConn 8, truncated", tail, err, ends[2])
	}
	buf := bytes.NewBuffer(bytes.Clone(crashed[:tail.End]))
	rw := ResumeRecordingWriter(buf)
	more := []RecEvent{
		{Kind: RecOpen, Conn: tail.MaxConn + 1, At: recT0.Add(time.Hour)},
		{Kind: RecData, Conn: tail.MaxConn + 1, At: recT0.Add(time.Hour), Data: []byte("{}\n")},
	}
	for _, ev := range more {
		if _, err := rw.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	all, _, err := readRecording(buf.Bytes(), nil)
	if err != io.EOF {
		t.Fatalf("resumed recording: %v, want io.EOF", err)
	}
	checkRecEvents(t, "resumed", all, append(evs[:3:3], more...))
	// Connections 7 and 8 were left open by the crash: the replay goes on.
	got, err := replayAll(t, buf.Bytes(), 100)
	if err != nil || len(got) != 2 || got[1].conn != 9 || got[1].record != "{}" {
		t.Fatalf("replaying the resumed recording: %+v, %v", got, err)
	}
}

func TestScanRecording(t *testing.T) {
	evs := smallRecording()
	file, ends := encodeRecording(t, evs)
	for cut := 0; cut <= len(file); cut++ {
		tail, err := ScanRecording(bytes.NewReader(file[:cut]))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		want := RecordingTail{}
		if cut >= RecordingHeaderSize {
			want.End = RecordingHeaderSize
			for i, end := range ends {
				if end <= cut {
					want.End, want.Events, want.MaxConn = int64(end), int64(i+1), max(want.MaxConn, evs[i].Conn)
				}
			}
		}
		if tail.End != want.End || tail.Events != want.Events || tail.MaxConn != want.MaxConn {
			t.Fatalf("cut at %d: %+v, want %+v", cut, tail, want)
		}
		if clean := int64(cut) == tail.End || cut == 0; clean != (tail.Damage == nil) || !clean && !errors.Is(tail.Damage, ErrRecordingTruncated) {
			t.Fatalf("cut at %d: Damage %v", cut, tail.Damage)
		}
	}
	bad := bytes.Clone(file)
	bad[ends[2]+26]++ // in the payload of evs[3]
	if tail, err := ScanRecording(bytes.NewReader(bad)); err != nil || tail.End != int64(ends[2]) || !errors.Is(tail.Damage, ErrRecordingCorrupt) {
		t.Errorf("corrupt event: %+v, %v", tail, err)
	}
	bad = bytes.Clone(file)
	bad[0] = 'X'
	if _, err := ScanRecording(bytes.NewReader(bad)); !errors.Is(err, ErrRecordingCorrupt) {
		t.Errorf("not a recording: %v, want ErrRecordingCorrupt", err)
	}
	if _, err := ScanRecording(io.MultiReader(bytes.NewReader(file[:40]), iotestErrReader{io.ErrClosedPipe})); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("failing reader: %v, want its error", err)
	}
}

// replayed is one emitted line, copied.
type replayed struct {
	conn   uint64
	at     time.Time
	record string
	reject RejectReason
	bytes  int
}

func replayAll(t *testing.T, file []byte, maxRecordBytes int) ([]replayed, error) {
	t.Helper()
	var out []replayed
	err := ReplayRecording(bytes.NewReader(file), maxRecordBytes, func(conn uint64, at time.Time, l Line) {
		out = append(out, replayed{conn, at, string(l.Record), l.Reject, l.Bytes})
	})
	return out, err
}

func checkReplayed(t *testing.T, what string, got, want []replayed) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d lines %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.conn != w.conn || !g.at.Equal(w.at) || g.record != w.record || g.reject != w.reject || g.bytes != w.bytes {
			t.Errorf("%s: line %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func TestReplayRecording(t *testing.T) {
	at := func(ms int) time.Time { return recT0.Add(time.Duration(ms) * time.Millisecond) }
	data := func(conn uint64, ms int, s string) RecEvent {
		return RecEvent{Kind: RecData, Conn: conn, At: at(ms), Data: []byte(s)}
	}
	evs := []RecEvent{
		{Kind: RecOpen, Conn: 1, At: at(0)},
		{Kind: RecOpen, Conn: 2, At: at(1)},
		data(1, 2, `{"c":1,"n":`),
		data(2, 3, `{"c":2,"n":1}`+"\n"+`{"c":2,`),
		data(1, 4, `1}`+"\n"+`{"c":1,"n":2}`+"\n"+`[1]`+"\n\n"+`{"c":1,"n":3,"long":"`),
		data(2, 5, `"n":2}`+"\n"+`{"c":2,"n":3,"cut`),
		{Kind: RecClose, Conn: 2, At: at(6)}, // mid-record: truncated
		data(1, 7, `xxxxxxxxxxxxxxxx"}`),
		data(1, 8, "\n"+`not json`+"\n"+`{"c":1,"n":4}`),
		data(1, 9, "\n"+`{"c":1,"unfinished"`), // still open at the end: no verdict
	}
	file, _ := encodeRecording(t, evs)
	got, err := replayAll(t, file, 32)
	if err != nil {
		t.Fatal(err)
	}
	want := []replayed{
		{conn: 2, at: at(3), record: `{"c":2,"n":1}`, bytes: 13},
		{conn: 1, at: at(4), record: `{"c":1,"n":1}`, bytes: 13},
		{conn: 1, at: at(4), record: `{"c":1,"n":2}`, bytes: 13},
		{conn: 1, at: at(4), reject: RejectNotObject, bytes: 3},
		{conn: 2, at: at(5), record: `{"c":2,"n":2}`, bytes: 13},
		{conn: 2, at: at(6), reject: RejectTruncated, bytes: 17},
		{conn: 1, at: at(8), reject: RejectOversized, bytes: 39},
		{conn: 1, at: at(8), reject: RejectInvalidJSON, bytes: 8},
		{conn: 1, at: at(9), record: `{"c":1,"n":4}`, bytes: 13},
	}
	checkReplayed(t, "replay", got, want)

	// A recording cut short replays what it holds, then says why it stopped.
	got, err = replayAll(t, file[:len(file)-3], 32)
	if !errors.Is(err, ErrRecordingTruncated) {
		t.Fatalf("replaying a cut recording: %v, want ErrRecordingTruncated", err)
	}
	checkReplayed(t, "cut replay", got, want[:len(want)-1])

	if err := ReplayRecording(bytes.NewReader(file), 0, func(uint64, time.Time, Line) {}); err == nil {
		t.Error("ReplayRecording with maxRecordBytes 0 succeeded")
	}
}

func TestReplayRecordingInconsistent(t *testing.T) {
	open := func(c uint64) RecEvent { return RecEvent{Kind: RecOpen, Conn: c, At: recT0} }
	closed := func(c uint64) RecEvent { return RecEvent{Kind: RecClose, Conn: c, At: recT0} }
	line := RecEvent{Kind: RecData, Conn: 1, At: recT0, Data: []byte("{}\n")}
	for name, evs := range map[string][]RecEvent{
		"data before open":  {line},
		"close before open": {closed(1)},
		"open twice":        {open(1), open(1)},
		"data after close":  {open(1), closed(1), line},
	} {
		file, _ := encodeRecording(t, evs)
		if _, err := replayAll(t, file, 100); !errors.Is(err, ErrRecordingInconsistent) {
			t.Errorf("%s: %v, want ErrRecordingInconsistent", name, err)
		}
	}
	// An ID may come back after its close; the lines before an inconsistency
	// are emitted.
	file, _ := encodeRecording(t, []RecEvent{open(1), line, closed(1), open(1), line, open(1)})
	got, err := replayAll(t, file, 100)
	if !errors.Is(err, ErrRecordingInconsistent) || len(got) != 2 {
		t.Errorf("reopened ID: %d lines then %v, want 2 lines then ErrRecordingInconsistent", len(got), err)
	}
}

// goldenRecording is the fixed content of testdata/recording-v1.golden.
func goldenRecording() []RecEvent {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600000007, time.UTC)
	return []RecEvent{
		{Kind: RecOpen, Conn: 1, At: at},
		{Kind: RecData, Conn: 1, At: at.Add(time.Microsecond), Data: []byte(`{"msg":"hello"}` + "\n" + `{"msg":`)},
		{Kind: RecOpen, Conn: 0x0102030405060708, At: at.Add(2 * time.Microsecond)},
		{Kind: RecData, Conn: 1, At: at.Add(3 * time.Microsecond), Data: []byte(`"world"}` + "\n")},
		{Kind: RecData, Conn: 0x0102030405060708, At: at.Add(4 * time.Microsecond), Data: []byte("[\"\xff\x00\"]\r\n")},
		{Kind: RecClose, Conn: 1, At: at.Add(5 * time.Microsecond)},
		{Kind: RecClose, Conn: 0x0102030405060708, At: at.Add(-time.Hour)}, // clocks step back
	}
}

// TestRecordingGolden pins the file format: the stored file must decode to
// the fixed events, and encoding them must give the stored bytes. Run
// `go test ./core/ -run TestRecordingGolden -update` to rewrite it after a
// deliberate format change (which also needs a new version number).
func TestRecordingGolden(t *testing.T) {
	path := filepath.Join("testdata", "recording-v1.golden")
	evs := goldenRecording()
	file, _ := encodeRecording(t, evs)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	got, _, err := readRecording(stored, nil)
	if err != io.EOF {
		t.Fatalf("reading %s: %v", path, err)
	}
	checkRecEvents(t, path, got, evs)
	if !bytes.Equal(stored, file) {
		t.Fatalf("encoding changed: %s holds\n%x\nthe writer now gives\n%x", path, stored, file)
	}
	// Spot-check the layout FORMAT.md draws, independently of the reader.
	le := binary.LittleEndian
	if string(stored[:8]) != "BVAPMREC" || le.Uint16(stored[8:10]) != 1 {
		t.Errorf("header %q", stored[:16])
	}
	e := stored[RecordingHeaderSize:]
	if e[0] != 1 || le.Uint64(e[1:9]) != 1 || int64(le.Uint64(e[9:17])) != evs[0].At.UnixNano() || le.Uint32(e[17:21]) != 0 {
		t.Errorf("first event %x", e[:recEventOverhead])
	}
}

func FuzzRecordingReader(f *testing.F) {
	file, _ := encodeRecording(f, smallRecording())
	f.Add(file)
	f.Add(file[:len(file)/2])
	f.Add([]byte("BVAPMREC"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rr, err := NewRecordingReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		last := rr.Offset()
		for {
			_, err := rr.Next()
			if rr.Offset() < last || rr.Offset() > int64(len(b)) {
				t.Fatalf("Offset %d after %d, file %d bytes", rr.Offset(), last, len(b))
			}
			last = rr.Offset()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrRecordingTruncated) && !errors.Is(err, ErrRecordingCorrupt) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
		}
	})
}
