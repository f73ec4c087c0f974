package core

import (
	"bytes"
	"encoding/binary"
)

// Framing (DESIGN 4.1): clients write newline-delimited JSON, one object per
// line, and a socket hands the bytes over in chunks split anywhere. Decoder
// turns those chunks back into lines and judges each one:
//
//   - a line of at most maxRecordBytes bytes (not counting its '\n') whose
//     first non-whitespace byte is '{' and which is valid JSON is a record,
//     kept byte-exact: leading and trailing whitespace, a '\r' left by a CRLF
//     client included, since JSON allows it around a value;
//   - an empty line, or one holding only JSON whitespace (space, '\t', '\r'),
//     is ignored and emits nothing;
//   - a longer line is rejected as oversized. Its bytes are discarded as they
//     arrive, so the decoder never holds more than maxRecordBytes of it, and the
//     rejection is emitted once, at its newline (or at Close), so that Bytes can
//     say how long the whole line was. Length is checked first: a line of more
//     than maxRecordBytes blanks is oversized too;
//   - invalid JSON is invalid_json, which covers a record cut short by an
//     interrupted write and glued to the next one ({"a":1{"b":2});
//   - valid JSON that is not an object (array, number, string, true, null) is
//     not_object;
//   - at Close, an unterminated line is truncated even when it happens to be
//     valid JSON, because the writer may have meant more. An unterminated line
//     already past the cap is reported as oversized only, not also as
//     truncated; an unterminated line of blanks is ignored, as it would be if
//     it had been terminated.
//
// After any rejection the next line is read normally: a rejection never costs
// more than its own line.

// Line is one result of decoding: either a record (Reject == "") or a rejection.
type Line struct {
	// Record holds the line's bytes without its '\n', byte-exact. It aliases
	// the chunk passed to Feed or the decoder's own buffer, so it is valid
	// only until emit returns: copy it to keep it. Nil for rejections.
	Record []byte
	// Reject is "" for a record, otherwise why the line was rejected.
	Reject RejectReason
	// Bytes is how many bytes the line had, without its '\n'. For an oversized
	// line it counts every discarded byte, for rejection accounting.
	Bytes int
}

// Decoder splits a byte stream into lines and classifies them. It is not safe
// for concurrent use: one owner feeds it, one call at a time (one decoder per
// connection).
//
// Memory: the decoder holds at most maxRecordBytes bytes (the start of a line
// whose end has not arrived yet), plus the chunk the caller owns. Lines that
// lie wholly inside a chunk are emitted as sub-slices of it, without copying.
type Decoder struct {
	maxRecordBytes int
	// partial holds the start of the current line while it fits the cap;
	// len(partial) <= cap(partial) <= maxRecordBytes.
	partial []byte
	// discarding is set once the current line has exceeded the cap;
	// discarded then counts its bytes so far, and partial is empty.
	discarding bool
	discarded  int
}

// NewDecoder returns a decoder that rejects lines longer than maxRecordBytes
// (not counting the '\n'). It panics if maxRecordBytes < 1: the cap is
// validated configuration, so a bad one here is a programmer error.
func NewDecoder(maxRecordBytes int) *Decoder {
	if maxRecordBytes < 1 {
		panic("core: NewDecoder: maxRecordBytes must be at least 1")
	}
	return &Decoder{maxRecordBytes: maxRecordBytes}
}

// Feed decodes the next chunk of the stream, calling emit once for each
// record or rejection that ends in it, in stream order. The chunk may end
// anywhere, even mid-line; the unfinished line is carried over to the next
// Feed or to Close. Feed does not keep chunk after it returns.
func (d *Decoder) Feed(chunk []byte, emit func(Line)) {
	for {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			d.hold(chunk)
			return
		}
		d.endLine(chunk[:i], emit)
		chunk = chunk[i+1:]
	}
}

// Close ends the stream: an unterminated line is emitted as truncated (or as
// oversized if it had passed the cap already). The decoder is then empty, as
// after Reset, and may be reused for a new stream.
func (d *Decoder) Close(emit func(Line)) {
	switch {
	case d.discarding:
		emit(Line{Reject: RejectOversized, Bytes: d.discarded})
	case len(d.partial) > 0 && !isBlankLine(d.partial):
		emit(Line{Reject: RejectTruncated, Bytes: len(d.partial)})
	}
	d.Reset()
}

// Reset drops any unfinished line without emitting anything, so the decoder
// can serve a new stream. It keeps its buffer (at most maxRecordBytes) for
// reuse.
func (d *Decoder) Reset() {
	d.partial = d.partial[:0]
	d.discarding = false
	d.discarded = 0
}

// Buffered returns how many bytes of an unfinished line the decoder holds; it
// never exceeds maxRecordBytes. Bytes of an oversized line being discarded are
// not held and so not counted.
func (d *Decoder) Buffered() int {
	return len(d.partial)
}

// hold keeps part, the start or middle of a line whose end has not arrived,
// or discards it once the line is past the cap.
func (d *Decoder) hold(part []byte) {
	if d.discarding {
		d.discarded += len(part)
		return
	}
	n := len(d.partial) + len(part)
	if n > d.maxRecordBytes {
		d.discarding = true
		d.discarded = n
		d.partial = d.partial[:0]
		return
	}
	d.partial = d.appendPartial(part)
}

// endLine completes the current line with tail (the bytes before a '\n') and
// emits its verdict. The line comes straight from the chunk when nothing of
// it was held, which is the common, copy-free case.
func (d *Decoder) endLine(tail []byte, emit func(Line)) {
	if d.discarding {
		n := d.discarded + len(tail)
		d.discarding, d.discarded = false, 0
		emit(Line{Reject: RejectOversized, Bytes: n})
		return
	}
	line := tail
	if len(d.partial) > 0 {
		if n := len(d.partial) + len(tail); n > d.maxRecordBytes {
			d.partial = d.partial[:0]
			emit(Line{Reject: RejectOversized, Bytes: n})
			return
		}
		line = d.appendPartial(tail)
		d.partial = d.partial[:0]
	} else if len(tail) > d.maxRecordBytes {
		emit(Line{Reject: RejectOversized, Bytes: len(tail)})
		return
	}
	if reason, blank := classifyLine(line); !blank {
		emit(decodedLine(line, reason))
	}
}

// appendPartial returns partial with part appended. Callers have checked that
// the result fits the cap; growth is capped there too, so the buffer's
// capacity never exceeds maxRecordBytes (plain append could double past it).
func (d *Decoder) appendPartial(part []byte) []byte {
	n := len(d.partial) + len(part)
	if n > cap(d.partial) {
		grown := make([]byte, len(d.partial), min(max(2*cap(d.partial), n, 512), d.maxRecordBytes))
		copy(grown, d.partial)
		d.partial = grown
	}
	return append(d.partial, part...)
}

// decodedLine builds the Line for a classified line of at most the cap.
func decodedLine(line []byte, reason RejectReason) Line {
	if reason != "" {
		return Line{Reject: reason, Bytes: len(line)}
	}
	return Line{Record: line, Bytes: len(line)}
}

// classifyLine judges a complete line of at most the cap. It reports blank for a
// line holding only JSON whitespace, which is to be ignored; otherwise reason
// is "" for a JSON object, or why the line is rejected.
func classifyLine(line []byte) (reason RejectReason, blank bool) {
	i := skipJSONSpace(line)
	if i == len(line) {
		return "", true
	}
	if !validJSON(line) {
		return RejectInvalidJSON, false
	}
	if line[i] != '{' {
		return RejectNotObject, false
	}
	return "", false
}

// isBlankLine reports whether b holds only JSON whitespace (or nothing).
func isBlankLine(b []byte) bool {
	return skipJSONSpace(b) == len(b)
}

// skipJSONSpace returns the index of the first byte of b that is not JSON
// whitespace (space, '\t', '\r', '\n'), or len(b).
func skipJSONSpace(b []byte) int {
	return skipJSONSpaceFrom(b, 0)
}

// skipJSONSpaceFrom is skipJSONSpace starting at b[i].
func skipJSONSpaceFrom(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// validJSON reports whether b is one JSON value with optional whitespace
// around it, exactly as encoding/json's Valid does (FuzzValidJSON checks the
// two agree): the same grammar, strings taken as bytes (invalid UTF-8 and
// lone surrogate escapes accepted, as Valid accepts them), and the same limit
// of maxJSONDepth nested arrays and objects. It is a loop instead of Valid's
// byte-at-a-time state machine, so it allocates nothing and runs about 1.5
// times as fast on punctuation-dense JSON and 4 to 5 times on string-heavy
// log records (most bytes of a string take one table look-up).
func validJSON(b []byte) bool {
	var v jsonValidator
	i := skipJSONSpace(b)
	for {
		i = v.value(b, i)
		for i >= 0 && v.afterValue {
			i = v.next(b, skipJSONSpaceFrom(b, i))
		}
		if i < 0 {
			return false
		}
		if v.done {
			return i == len(b)
		}
	}
}

// maxJSONDepth is encoding/json's limit on nesting (its maxNestingDepth).
const maxJSONDepth = 10000

// jsonValidator keeps the open arrays and objects of validJSON as a stack of
// bits (1 = object), so deep nesting costs no recursion and no allocation.
type jsonValidator struct {
	open       [maxJSONDepth/64 + 1]uint64
	depth      int
	afterValue bool // a value has just ended; a ',' or a closer may follow
	done       bool // the top-level value has ended
}

// value scans the value starting at b[i] (whitespace skipped already). It
// returns the index after a scalar or after an opener's first key and ':'
// (or after an empty container), or -1 if b holds no valid value there.
func (v *jsonValidator) value(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	v.afterValue = true
	switch c := b[i]; {
	case c == '"':
		return scanJSONString(b, i+1)
	case c == '-' || ('0' <= c && c <= '9'):
		return scanJSONNumber(b, i)
	case c == 't':
		return scanJSONLiteral(b, i, "true")
	case c == 'f':
		return scanJSONLiteral(b, i, "false")
	case c == 'n':
		return scanJSONLiteral(b, i, "null")
	case c == '{' || c == '[':
		return v.push(b, i, c == '{')
	}
	return -1
}

// push opens an object or array at b[i]. For an empty one it returns the
// index after its closer, as after a scalar; otherwise the index where the
// first member's value starts.
func (v *jsonValidator) push(b []byte, i int, object bool) int {
	if v.depth == maxJSONDepth {
		return -1
	}
	closer := byte(']')
	v.open[v.depth/64] &^= 1 << (v.depth % 64)
	if object {
		closer = '}'
		v.open[v.depth/64] |= 1 << (v.depth % 64)
	}
	v.depth++
	i = skipJSONSpaceFrom(b, i+1)
	if i < len(b) && b[i] == closer {
		v.depth--
		return i + 1
	}
	v.afterValue = false
	if object {
		return scanJSONKey(b, i)
	}
	return i
}

// next handles what may follow a value at b[i]: a ',' and the next member
// (returning where its value starts), a closer, or the end of the top-level
// value (setting done).
func (v *jsonValidator) next(b []byte, i int) int {
	if v.depth == 0 {
		v.afterValue, v.done = false, true
		return i
	}
	if i >= len(b) {
		return -1
	}
	object := v.open[(v.depth-1)/64]&(1<<((v.depth-1)%64)) != 0
	switch {
	case b[i] == ',':
		v.afterValue = false
		if object {
			return scanJSONKey(b, skipJSONSpaceFrom(b, i+1))
		}
		return skipJSONSpaceFrom(b, i+1)
	case object && b[i] == '}', !object && b[i] == ']':
		v.depth--
		return i + 1
	}
	return -1
}

// scanJSONKey scans an object member's key and ':' at b[i], returning where its
// value starts, or -1.
func scanJSONKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanJSONString(b, i+1); i < 0 {
		return -1
	}
	if i = skipJSONSpaceFrom(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipJSONSpaceFrom(b, i+1)
}

// jsonPlainStringByte marks the bytes a JSON string may hold unescaped: not a
// control character, '"' or '\\'. Bytes >= 0x80 pass unchecked, as in Valid.
var jsonPlainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanJSONString scans the rest of a string whose opening '"' is at b[i-1],
// returning the index after its closing '"', or -1.
func scanJSONString(b []byte, i int) int {
	for {
		i = skipPlainWords(b, i)
		for i < len(b) && jsonPlainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i = scanJSONEscape(b, i+1); i < 0 {
				return -1
			}
		default:
			return -1 // a control character
		}
	}
}

// Eight bytes at a time: records are mostly string bytes, and a word with
// no quote, no backslash and no control character can be skipped whole.
// A false alarm (borrows across bytes) only hands over to the byte loop.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// skipPlainWords skips whole 8-byte words of plain string bytes from i.
func skipPlainWords(b []byte, i int) int {
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		special := (x - ones*0x20) & ^x // a byte below 0x20
		special |= (quote - ones) & ^quote
		special |= (backslash - ones) & ^backslash
		if special&highs != 0 {
			return i
		}
		i += 8
	}
	return i
}

// scanJSONEscape scans an escape whose '\\' is at b[i-1], returning the index
// after it, or -1.
func scanJSONEscape(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1
	case 'u':
		if len(b)-i < 5 {
			return -1
		}
		for _, c := range b[i+1 : i+5] {
			if !isJSONHex(c) {
				return -1
			}
		}
		return i + 5
	}
	return -1
}

func isJSONHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanJSONNumber scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at b[i],
// returning the index after it, or -1.
func scanJSONNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipJSONDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = skipJSONDigits1(b, i+1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		return skipJSONDigits1(b, i)
	}
	return i
}

// skipJSONDigits returns the index of the first byte from b[i] on that is not a
// decimal digit, or len(b).
func skipJSONDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipJSONDigits1 is skipJSONDigits for one digit or more: -1 if b[i] is no digit.
func skipJSONDigits1(b []byte, i int) int {
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return -1
	}
	return skipJSONDigits(b, i+1)
}

// scanJSONLiteral scans the literal lit (true, false or null) at b[i], returning
// the index after it, or -1.
func scanJSONLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}
