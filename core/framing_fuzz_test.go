package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzDecoderChunking checks that decoding does not depend on how the stream
// is cut into chunks, and that it matches a naive model of the contract.
//
// stream is the bytes a client sent; cuts gives the chunk sizes, one byte
// each (0 feeds an empty chunk), the rest of the stream going in one last
// chunk; capSeed picks the cap, 1 to 64 bytes, small so oversized lines are
// common.
func FuzzDecoderChunking(f *testing.F) {
	f.Add([]byte(framingSample), []byte{3, 0, 17, 1, 1, 40}, uint8(23))
	f.Add([]byte("{\"a\":1}\r\n\n[]\n{\"a\":1{\"b\":2}\n  \n{"), []byte{1, 2, 3, 4, 5, 6, 7}, uint8(9))
	f.Add([]byte("{\"k\":\"0123456789012345678901234567890123456789\"}\n{}\n"), []byte{5, 5, 5, 5, 5}, uint8(10))
	f.Add([]byte("null\ntrue\n\"s\"\n12\n{\"x\":[1,{}]}\n\t{ }\t\n"), []byte{255}, uint8(63))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, capSeed uint8) {
		capBytes := int(capSeed)%64 + 1
		want := framingModel(stream, capBytes)
		whole := fuzzDecodeChunks(t, stream, nil, capBytes)
		if fmt.Sprint(whole) != fmt.Sprint(want) {
			t.Fatalf("one chunk, cap %d:\n got  %v\n want %v", capBytes, whole, want)
		}
		cut := fuzzDecodeChunks(t, stream, cuts, capBytes)
		if fmt.Sprint(cut) != fmt.Sprint(want) {
			t.Fatalf("cut %v, cap %d:\n got  %v\n want %v", cuts, capBytes, cut, want)
		}
		for _, g := range cut {
			checkDecodedShape(t, g, capBytes)
		}
	})
}

// fuzzDecodeChunks feeds stream in chunks of the sizes cuts gives, then the rest,
// closes, and returns what was emitted. It checks the memory bound after
// every Feed.
func fuzzDecodeChunks(t *testing.T, stream, cuts []byte, capBytes int) []decoded {
	var out []decoded
	d := NewDecoder(capBytes)
	for _, c := range cuts {
		n := min(int(c), len(stream))
		d.Feed(stream[:n], collectLines(&out))
		stream = stream[n:]
		if d.Buffered() > capBytes || cap(d.partial) > capBytes {
			t.Fatalf("buffered %d, capacity %d, cap %d", d.Buffered(), cap(d.partial), capBytes)
		}
	}
	d.Feed(stream, collectLines(&out))
	d.Close(collectLines(&out))
	if d.Buffered() != 0 {
		t.Fatalf("buffered %d after Close", d.Buffered())
	}
	return out
}

// checkDecodedShape asserts what holds for every line, whatever the stream.
func checkDecodedShape(t *testing.T, g decoded, capBytes int) {
	t.Helper()
	if g.Reject != "" {
		if g.Record != "" || g.Bytes < 1 || (g.Reject == RejectOversized) != (g.Bytes > capBytes) {
			t.Fatalf("bad rejection %v, cap %d", g, capBytes)
		}
		return
	}
	r := []byte(g.Record)
	if len(r) != g.Bytes || len(r) > capBytes || bytes.IndexByte(r, '\n') >= 0 ||
		!json.Valid(r) || r[skipJSONSpace(r)] != '{' {
		t.Fatalf("bad record %v, cap %d", g, capBytes)
	}
}

// framingModel is the contract written the slow, obvious way: split the whole
// stream on '\n' and judge each piece on its own.
func framingModel(stream []byte, capBytes int) []decoded {
	var out []decoded
	lines := bytes.Split(stream, []byte{'\n'})
	for i, l := range lines {
		last := i == len(lines)-1 // not '\n'-terminated
		switch {
		case len(l) > capBytes:
			out = append(out, decReject(RejectOversized, len(l)))
		case len(bytes.Trim(l, " \t\r")) == 0:
			// blank: ignored
		case last:
			out = append(out, decReject(RejectTruncated, len(l)))
		case !json.Valid(l):
			out = append(out, decReject(RejectInvalidJSON, len(l)))
		case bytes.TrimLeft(l, " \t\r")[0] != '{':
			out = append(out, decReject(RejectNotObject, len(l)))
		default:
			out = append(out, decRecord(string(l)))
		}
	}
	return out
}

// FuzzValidJSON checks that validJSON agrees with encoding/json's Valid on
// every input.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"],"b":{}} `, `[]`, `[1,]`, `{"a"}`,
		`{"a":1,}`, `01`, `-`, `1.`, `1e`, `1E-7`, `"\ud800"`, "\"\xff\"", "\"\x1f\"", `"\x"`,
		`tru`, `nul`, `{"a":1{"b":2}`, `[[[]]]`, `{"a":{"b":[{}]}}`, "\t\r\n1\n", ``, ` `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}
