package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// decoded is a Line with its record copied, so it outlives the emit call.
type decoded struct {
	Record string
	Reject RejectReason
	Bytes  int
}

func (g decoded) String() string {
	if g.Reject == "" {
		return fmt.Sprintf("record %q (%d bytes)", g.Record, g.Bytes)
	}
	return fmt.Sprintf("%s (%d bytes)", g.Reject, g.Bytes)
}

func decRecord(s string) decoded              { return decoded{Record: s, Bytes: len(s)} }
func decReject(r RejectReason, n int) decoded { return decoded{Reject: r, Bytes: n} }
func collectLines(out *[]decoded) func(Line) {
	return func(l Line) { *out = append(*out, copyDecoded(l)) }
}
func copyDecoded(l Line) decoded {
	return decoded{Record: string(l.Record), Reject: l.Reject, Bytes: l.Bytes}
}
func decodeStream(capBytes int, stream string) []decoded {
	return decodeChunks(capBytes, []string{stream})
}

// decodeChunks feeds the chunks to a fresh decoder, closes it and returns
// everything it emitted.
func decodeChunks(capBytes int, chunks []string) []decoded {
	var out []decoded
	d := NewDecoder(capBytes)
	for _, c := range chunks {
		d.Feed([]byte(c), collectLines(&out))
	}
	d.Close(collectLines(&out))
	return out
}

func sameDecoded(t *testing.T, what string, got, want []decoded) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func TestDecoderReasons(t *testing.T) {
	const capBytes = 16
	tests := []struct {
		name   string
		stream string
		want   []decoded
	}{
		{"record", "{\"a\":1}\n", []decoded{decRecord(`{"a":1}`)}},
		{"empty object", "{}\n", []decoded{decRecord(`{}`)}},
		{"exactly the cap", `{"a":"12345678"}` + "\n", []decoded{decRecord(`{"a":"12345678"}`)}},
		{"one over the cap", `{"a":"123456789"}` + "\n{}\n", []decoded{decReject(RejectOversized, 17), decRecord("{}")}},
		{"invalid json", "{\"a\":\n{}\n", []decoded{decReject(RejectInvalidJSON, 5), decRecord("{}")}},
		{"garbage", "hello\n", []decoded{decReject(RejectInvalidJSON, 5)}},
		{"glued after cut", "{\"a\":1{\"b\":2}\n", []decoded{decReject(RejectInvalidJSON, 13)}},
		{"two objects on a line", "{}{}\n", []decoded{decReject(RejectInvalidJSON, 4)}},
		{"array", "[1,2]\n", []decoded{decReject(RejectNotObject, 5)}},
		{"number", "42\n", []decoded{decReject(RejectNotObject, 2)}},
		{"string", "\"s\"\n", []decoded{decReject(RejectNotObject, 3)}},
		{"true", "true\n", []decoded{decReject(RejectNotObject, 4)}},
		{"null", "null\n", []decoded{decReject(RejectNotObject, 4)}},
		{"invalid array", "[1,\n", []decoded{decReject(RejectInvalidJSON, 3)}},
		{"empty lines", "\n\n{}\n\n", []decoded{decRecord("{}")}},
		{"blank lines", " \n\t\r\n\r\n{}\n", []decoded{decRecord("{}")}},
		{"blank line over the cap", strings.Repeat(" ", 17) + "\n", []decoded{decReject(RejectOversized, 17)}},
		{"crlf keeps the cr", "{\"a\":1}\r\n{}\r\n", []decoded{decRecord("{\"a\":1}\r"), decRecord("{}\r")}},
		{"leading blanks kept", " \t{}\n", []decoded{decRecord(" \t{}")}},
		{"nul byte", "{}\x00\n", []decoded{decReject(RejectInvalidJSON, 3)}},
		{"truncated", "{}\n{\"a\":1", []decoded{decRecord("{}"), decReject(RejectTruncated, 6)}},
		{"truncated valid json", "{}", []decoded{decReject(RejectTruncated, 2)}},
		{"truncated garbage", "xyz", []decoded{decReject(RejectTruncated, 3)}},
		{"unterminated blanks ignored", "{}\n \r", []decoded{decRecord("{}")}},
		{"unterminated oversized once", strings.Repeat("x", 40), []decoded{decReject(RejectOversized, 40)}},
		{"nothing", "", nil},
		{"resync after each rejection", "[]\n{\n" + strings.Repeat("y", 20) + "\n{}\n",
			[]decoded{decReject(RejectNotObject, 2), decReject(RejectInvalidJSON, 1), decReject(RejectOversized, 20), decRecord("{}")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameDecoded(t, "one chunk", decodeStream(capBytes, tt.stream), tt.want)
			sameDecoded(t, "byte at a time", decodeChunks(capBytes, strings.Split(tt.stream, "")), tt.want)
		})
	}
}

// framingSample has one line of every kind, cap 24: the oversized line is 30
// bytes, so with two cuts it spans three chunks in many of the splits below.
const framingSample = "{\"a\":1}\n\n[1]\r\n{\"b\":\"x\"}\r\n" +
	"{\"long\":\"0123456789abcdefghij\"}\n" + // 31 bytes: oversized
	"{\"a\":1{\"b\":2}\n  \n{\"c\":null}\n{\"d\":"

var framingSampleWant = []decoded{
	decRecord(`{"a":1}`),
	decReject(RejectNotObject, 4),
	decRecord("{\"b\":\"x\"}\r"),
	decReject(RejectOversized, 31),
	decReject(RejectInvalidJSON, 13),
	decRecord(`{"c":null}`),
	decReject(RejectTruncated, 5),
}

// TestDecoderEveryBoundary cuts the sample stream at every pair of byte
// positions i <= j, feeding three chunks (some empty): 5,356 decodings.
func TestDecoderEveryBoundary(t *testing.T) {
	const capBytes = 24
	s := framingSample
	sameDecoded(t, "whole", decodeStream(capBytes, s), framingSampleWant)
	for i := 0; i <= len(s); i++ {
		for j := i; j <= len(s); j++ {
			out := decodeChunks(capBytes, []string{s[:i], s[i:j], s[j:]})
			if fmt.Sprint(out) != fmt.Sprint(framingSampleWant) {
				t.Fatalf("cut at %d and %d:\n got  %v\n want %v", i, j, out, framingSampleWant)
			}
		}
	}
}

// TestDecoderRecordsAliasChunk checks that several records in one chunk are
// all emitted, in order, as sub-slices of the chunk (no copy).
func TestDecoderRecordsAliasChunk(t *testing.T) {
	chunk := []byte("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n")
	starts := []int{0, 8, 16}
	d := NewDecoder(64)
	n := 0
	d.Feed(chunk, func(l Line) {
		if l.Reject != "" || n >= len(starts) {
			t.Fatalf("unexpected line %v", copyDecoded(l))
		}
		if unsafe.SliceData(l.Record) != &chunk[starts[n]] {
			t.Errorf("record %d was copied, want a sub-slice of the chunk", n)
		}
		n++
	})
	if n != 3 || d.Buffered() != 0 {
		t.Errorf("emitted %d records, buffered %d; want 3 and 0", n, d.Buffered())
	}
}

// TestDecoderOversizedBoundedMemory feeds a 10 MiB line in 1,000-byte chunks
// (10,486 chunks, the last one short) with a cap of 64 KiB, then a good record
// on the same stream: the decoder never holds more than the cap, reports the
// line once with its full length, and reads the record normally.
func TestDecoderOversizedBoundedMemory(t *testing.T) {
	const capBytes, lineBytes, chunkBytes = 64 << 10, 10 << 20, 1000
	d := NewDecoder(capBytes)
	var out []decoded
	line := bytes.Repeat([]byte{'x'}, lineBytes)
	for off := 0; off < len(line); off += chunkBytes {
		d.Feed(line[off:min(off+chunkBytes, len(line))], collectLines(&out))
		if d.Buffered() > capBytes || cap(d.partial) > capBytes {
			t.Fatalf("after %d bytes: buffered %d, capacity %d, cap %d", off, d.Buffered(), cap(d.partial), capBytes)
		}
	}
	d.Feed([]byte("\n{\"ok\":true}\n"), collectLines(&out))
	d.Close(collectLines(&out))
	sameDecoded(t, "lines", out, []decoded{decReject(RejectOversized, lineBytes), decRecord(`{"ok":true}`)})
}

// TestDecoderCapacityBound checks the buffer's capacity stays within the cap
// even when a line grows by small pieces to exactly the cap.
func TestDecoderCapacityBound(t *testing.T) {
	for _, capBytes := range []int{1, 2, 511, 512, 513, 1000, 4097} {
		d := NewDecoder(capBytes)
		var out []decoded
		line := strings.Repeat(" ", capBytes-1) + "1" // a line of exactly the cap
		if capBytes >= 8 {
			line = `{"k":"` + strings.Repeat("v", capBytes-8) + `"}`
		}
		for i := 0; i < len(line); i += 7 {
			d.Feed([]byte(line[i:min(i+7, len(line))]), collectLines(&out))
			if cap(d.partial) > capBytes {
				t.Fatalf("capBytes %d: capacity %d", capBytes, cap(d.partial))
			}
		}
		d.Feed([]byte("\n"), collectLines(&out))
		if len(out) != 1 || out[0].Bytes != capBytes {
			t.Errorf("capBytes %d: got %v, want one line of %d bytes", capBytes, out, capBytes)
		}
	}
}

func TestDecoderClosePartial(t *testing.T) {
	d := NewDecoder(64)
	var out []decoded
	d.Feed([]byte("{\"a\":1}\n{\"b\""), collectLines(&out))
	if d.Buffered() != 4 {
		t.Errorf("buffered %d, want 4", d.Buffered())
	}
	d.Close(collectLines(&out))
	d.Close(collectLines(&out)) // a second Close has nothing left to report
	sameDecoded(t, "lines", out, []decoded{decRecord(`{"a":1}`), decReject(RejectTruncated, 4)})
	if d.Buffered() != 0 {
		t.Errorf("buffered %d after Close, want 0", d.Buffered())
	}
}

func TestDecoderReset(t *testing.T) {
	d := NewDecoder(8)
	var out []decoded
	d.Feed([]byte("{\"half"), collectLines(&out))
	d.Reset()
	d.Feed([]byte("{}\n"+strings.Repeat("z", 20)), collectLines(&out))
	d.Reset() // drops the oversized line in progress without a word
	d.Feed([]byte("{\"x\":1}\n"), collectLines(&out))
	d.Close(collectLines(&out))
	d.Feed([]byte("[]\n{"), collectLines(&out)) // reuse after Close
	d.Close(collectLines(&out))
	sameDecoded(t, "lines", out, []decoded{decRecord("{}"), decRecord(`{"x":1}`), decReject(RejectNotObject, 2), decReject(RejectTruncated, 1)})
}

func TestNewDecoderPanics(t *testing.T) {
	for _, capBytes := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewDecoder(%d) did not panic", capBytes)
				}
			}()
			NewDecoder(capBytes)
		}()
	}
}

// ExampleDecoder shows the drive loop of one connection: feed what the socket
// delivers, count rejections by reason, and close at end of stream.
func ExampleDecoder() {
	reads := []string{"{\"msg\":\"hel", "lo\"}\r\n[1]\n", "{\"msg\":\"cut"}
	d := NewDecoder(1 << 20)
	emit := func(l Line) {
		if l.Reject != "" {
			fmt.Printf("rejected: %s, %d bytes\n", l.Reject, l.Bytes)
			return
		}
		fmt.Printf("record: %q\n", l.Record) // copy l.Record to keep it
	}
	for _, r := range reads {
		d.Feed([]byte(r), emit)
	}
	d.Close(emit)
	// Output:
	// record: "{\"msg\":\"hello\"}\r"
	// rejected: not_object, 3 bytes
	// rejected: truncated, 11 bytes
}

// framingBenchStream returns about 4 MiB of 1 KiB records (1,023 bytes and '\n'),
// each a realistic flat event object padded to size.
func framingBenchStream(tb testing.TB) (stream []byte, records int) {
	const recordBytes, total = 1024, 4 << 20
	for i := 0; len(stream) < total; i++ {
		head := fmt.Sprintf(`{"ts":"2025-01-02T03:04:05.%06dZ","level":"info","trace_id":"%032x","duration_ms":%d.%03d,"tags":["php","fpm"],"ok":true,"msg":"`, i, i*7919, i%900, i%1000)
		pad := recordBytes - 1 - len(head) - len(`"}`)
		line := head + strings.Repeat("a", pad) + `"}` + "\n"
		if len(line) != recordBytes || !json.Valid([]byte(line)) {
			tb.Fatalf("bad bench record %d", i)
		}
		stream = append(stream, line...)
		records++
	}
	return stream, records
}

// BenchmarkDecoder feeds 1 KiB records in 64 KiB chunks, as a socket read
// loop would; most records are zero-copy, one per chunk straddles a boundary.
func BenchmarkDecoder(b *testing.B) {
	stream, records := framingBenchStream(b)
	const chunkBytes = 64 << 10
	d := NewDecoder(1 << 20)
	n := 0
	emit := func(l Line) {
		if l.Reject == "" {
			n++
		}
	}
	iters := 0
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		iters++
		for off := 0; off < len(stream); off += chunkBytes {
			d.Feed(stream[off:min(off+chunkBytes, len(stream))], emit)
		}
		d.Close(emit)
	}
	b.ReportMetric(float64(records*iters)/b.Elapsed().Seconds(), "records/s")
	if n != records*iters {
		b.Fatalf("decoded %d records, want %d", n, records*iters)
	}
}

// BenchmarkDecoderBaselineJSONValid is the floor to compare against: split
// the whole stream with bytes.IndexByte and call json.Valid on each line.
func BenchmarkDecoderBaselineJSONValid(b *testing.B) {
	stream, records := framingBenchStream(b)
	n := 0
	iters := 0
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		iters++
		rest := stream
		for i := bytes.IndexByte(rest, '\n'); i >= 0; i = bytes.IndexByte(rest, '\n') {
			if json.Valid(rest[:i]) {
				n++
			}
			rest = rest[i+1:]
		}
	}
	b.ReportMetric(float64(records*iters)/b.Elapsed().Seconds(), "records/s")
	if n != records*iters {
		b.Fatalf("validated %d records, want %d", n, records*iters)
	}
}

// TestValidJSONDepth checks validJSON keeps encoding/json's nesting limit of
// 10,000, for arrays, objects and a mix, where a fuzzer rarely goes.
func TestValidJSONDepth(t *testing.T) {
	nest := func(depth int, open, close string) []byte {
		return []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth))
	}
	for _, depth := range []int{1, 63, 64, 65, maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, b := range [][]byte{
			nest(depth, "[", "]"),
			nest(depth, `{"k":`, "}"),
			nest(depth/2, `[{"k":`, "}]"),
		} {
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("depth %d, %.12q...: validJSON %v, json.Valid %v", depth, b, got, want)
			}
		}
	}
}
