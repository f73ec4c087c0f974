package core

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"time"
)

// Traffic recording (DESIGN 3, FORMAT.md "Traffic recording"): the daemon
// records what its socket readers received, per connection and read by read,
// so that the simulator can replay it byte-exactly through a Decoder. The
// file is append-only and may be cut short at any byte by a crash or by the
// host's cap; a reader returns every complete event before the damage and
// then a typed error.

// RecEventKind says what a recorded event is.
type RecEventKind uint8

// Recorded event kinds. The values are part of the file format.
const (
	RecOpen  RecEventKind = 1 // a connection was accepted
	RecData  RecEventKind = 2 // one read delivered Data
	RecClose RecEventKind = 3 // the connection ended (EOF or error)
)

// String returns "open", "data" or "close", or "kind(N)" for anything else.
func (k RecEventKind) String() string {
	switch k {
	case RecOpen:
		return "open"
	case RecData:
		return "data"
	case RecClose:
		return "close"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// RecEvent is one recorded event.
type RecEvent struct {
	Kind RecEventKind
	// Conn identifies the connection. The host assigns it; it is unique
	// within a file (a resumed file included): one open, then data, then at
	// most one close.
	Conn uint64
	// At is when the event happened, as the host saw it. It is stored as
	// Unix nanoseconds, so it must lie between the years 1678 and 2262 (the
	// zero time.Time does not); it reads back in UTC, without a monotonic
	// reading.
	At time.Time
	// Data holds the bytes of one read, exactly as the socket delivered
	// them, for RecData (at most MaxRecordingChunk bytes; a host whose reads
	// may deliver more splits them into consecutive data events). It must be
	// empty for RecOpen and RecClose.
	Data []byte
}

const (
	// RecordingVersion is the format version this package writes and reads.
	RecordingVersion = 1
	// RecordingHeaderSize is the size of the file header, which
	// NewRecordingWriter writes, for a host that counts its cap.
	RecordingHeaderSize = 16
	// MaxRecordingChunk is the largest Data a recorded event may hold: 16
	// MiB, the largest ingest.read_bytes, so that every socket read fits one
	// event. A reader refuses longer lengths as corrupt, and it allocates
	// as the bytes arrive, so a cut file never costs more than it holds.
	MaxRecordingChunk = 16 << 20

	recordingMagic = "BVAPMREC"
	// recEventHeaderSize covers kind, conn, time, length and the header
	// CRC; recEventOverhead adds the data CRC after the payload.
	recEventHeaderSize = 25
	recEventOverhead   = recEventHeaderSize + 4
)

var (
	// ErrRecordingTruncated means the recording ends inside its header or an
	// event, as a crash or a size cap leaves it. Every event before it was
	// returned; RecordingReader.Offset says where the damage starts.
	ErrRecordingTruncated = errors.New("recording truncated")
	// ErrRecordingCorrupt means a CRC mismatch, a bad magic number, or an
	// impossible kind or length. Every event before it was returned.
	ErrRecordingCorrupt = errors.New("recording corrupt")
	// ErrRecordingEventInvalid means Write was given an event it cannot
	// record (unknown kind, Data too long or on a non-data event, a time out
	// of range). Nothing was written.
	ErrRecordingEventInvalid = errors.New("invalid recording event")
	// ErrRecordingInconsistent means ReplayRecording met an event that breaks
	// the per-connection order: a second open of a connection, or data or a
	// close for a connection that is not open.
	ErrRecordingInconsistent = errors.New("recording inconsistent")
)

// RecordingVersionError is returned by NewRecordingReader for a recording
// with a valid magic number but a format version this package does not know.
type RecordingVersionError struct {
	Version uint16
}

func (e *RecordingVersionError) Error() string {
	return fmt.Sprintf("recording format version %d not supported (this build reads version %d)", e.Version, RecordingVersion)
}

var recordingCRC = crc32.MakeTable(crc32.Castagnoli)

// minRecTime and maxRecTime bound the times Unix nanoseconds can hold.
var (
	minRecTime = time.Unix(0, math.MinInt64)
	maxRecTime = time.Unix(0, math.MaxInt64)
)

// EncodedRecEventSize returns how many bytes Write will write for ev (if ev is
// valid), so that a host can check its cap before writing.
func EncodedRecEventSize(ev RecEvent) int {
	return recEventOverhead + len(ev.Data)
}

// checkRecEvent reports why ev cannot be recorded, or nil.
func checkRecEvent(ev RecEvent) error {
	switch ev.Kind {
	case RecOpen, RecClose:
		if len(ev.Data) != 0 {
			return fmt.Errorf("%w: %s event with %d bytes of data", ErrRecordingEventInvalid, ev.Kind, len(ev.Data))
		}
	case RecData:
		if len(ev.Data) > MaxRecordingChunk {
			return fmt.Errorf("%w: data chunk of %d bytes exceeds the maximum of %d", ErrRecordingEventInvalid, len(ev.Data), MaxRecordingChunk)
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrRecordingEventInvalid, uint8(ev.Kind))
	}
	if ev.At.Before(minRecTime) || ev.At.After(maxRecTime) {
		return fmt.Errorf("%w: time %s out of the Unix-nanosecond range", ErrRecordingEventInvalid, ev.At.UTC().Format(time.RFC3339))
	}
	return nil
}

// appendRecordingHeader appends the 16-byte file header to dst.
func appendRecordingHeader(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, recordingMagic...)
	dst = binary.LittleEndian.AppendUint16(dst, RecordingVersion)
	dst = binary.LittleEndian.AppendUint16(dst, 0) // reserved
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], recordingCRC))
}

// appendRecEvent appends ev, already checked, to dst.
func appendRecEvent(dst []byte, ev RecEvent) []byte {
	le := binary.LittleEndian
	start := len(dst)
	dst = append(dst, byte(ev.Kind))
	dst = le.AppendUint64(dst, ev.Conn)
	dst = le.AppendUint64(dst, uint64(ev.At.UnixNano()))
	dst = le.AppendUint32(dst, uint32(len(ev.Data)))
	dst = le.AppendUint32(dst, crc32.Checksum(dst[start:], recordingCRC))
	dst = append(dst, ev.Data...)
	return le.AppendUint32(dst, crc32.Checksum(ev.Data, recordingCRC))
}

// RecordingWriter appends events to a recording. Each event goes to the
// underlying writer in a single Write call, so a failed or short write
// damages at most that event. It is not safe for concurrent use.
type RecordingWriter struct {
	w   io.Writer
	buf []byte
	err error // sticky: after a failed write the file ends in a partial event
}

// NewRecordingWriter writes the file header (RecordingHeaderSize bytes) to w
// and returns a writer for the events that follow.
func NewRecordingWriter(w io.Writer) (*RecordingWriter, error) {
	hdr := appendRecordingHeader(nil)
	n, err := w.Write(hdr)
	if err == nil && n != len(hdr) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return nil, fmt.Errorf("writing recording header: %w", err)
	}
	return &RecordingWriter{w: w}, nil
}

// ResumeRecordingWriter returns a writer that appends events to w, which must
// be positioned at the end of the last good event of an existing recording
// (ScanRecording's End, after cutting off any damage): the header is not
// written again.
func ResumeRecordingWriter(w io.Writer) *RecordingWriter {
	return &RecordingWriter{w: w}
}

// Write appends ev and returns how many bytes it wrote, which is
// EncodedRecEventSize(ev) on success. An invalid event is refused with
// ErrRecordingEventInvalid before anything is written. Once the underlying
// writer has failed, every later Write returns that error: the file then ends
// in a partial event, and more events after it could not be read back.
func (rw *RecordingWriter) Write(ev RecEvent) (n int, err error) {
	if rw.err != nil {
		return 0, rw.err
	}
	if err := checkRecEvent(ev); err != nil {
		return 0, err
	}
	rw.buf = appendRecEvent(rw.buf[:0], ev)
	n, err = rw.w.Write(rw.buf)
	if err == nil && n != len(rw.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		rw.err = fmt.Errorf("writing recording event: %w", err)
		return n, rw.err
	}
	if cap(rw.buf) > 64<<10 {
		rw.buf = nil // do not keep a large chunk's buffer for the small ones
	}
	return n, nil
}

// RecordingReader reads the events of a recording in order. It is not safe
// for concurrent use.
type RecordingReader struct {
	r   *bufio.Reader
	off int64 // bytes consumed: the end of the last complete event
	hdr [recEventHeaderSize]byte
	buf []byte
	err error // sticky
}

// NewRecordingReader reads and checks the file header. A recording cut short
// inside its header (an empty file included) gives ErrRecordingTruncated, a
// wrong magic number or header CRC ErrRecordingCorrupt, and a version other
// than 1 a *RecordingVersionError.
func NewRecordingReader(r io.Reader) (*RecordingReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	var hdr [RecordingHeaderSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: header cut short at offset 0", ErrRecordingTruncated)
		}
		return nil, fmt.Errorf("reading recording header: %w", err)
	}
	if string(hdr[:8]) != recordingMagic {
		return nil, fmt.Errorf("%w: bad magic number at offset 0 (not a recording)", ErrRecordingCorrupt)
	}
	le := binary.LittleEndian
	if v := le.Uint16(hdr[8:10]); v != RecordingVersion {
		return nil, &RecordingVersionError{Version: v}
	}
	if le.Uint32(hdr[12:16]) != crc32.Checksum(hdr[:12], recordingCRC) || le.Uint16(hdr[10:12]) != 0 {
		return nil, fmt.Errorf("%w: header CRC mismatch at offset 0", ErrRecordingCorrupt)
	}
	return &RecordingReader{r: br, off: RecordingHeaderSize}, nil
}

// Offset returns the offset just past the last complete event returned (or
// past the header). After ErrRecordingTruncated it is where the partial event
// starts: a host resuming the file truncates it there before appending.
func (rr *RecordingReader) Offset() int64 {
	return rr.off
}

// Next returns the next event. Its Data is the reader's own copy. At a clean
// end (the file ends exactly after an event) it returns io.EOF. A partial
// last event gives ErrRecordingTruncated and damage ErrRecordingCorrupt, both
// wrapped with the event's offset; an error of the underlying reader is
// returned wrapped. Every error is sticky.
func (rr *RecordingReader) Next() (RecEvent, error) {
	ev, err := rr.next()
	if err == nil && len(ev.Data) > 0 {
		ev.Data = append([]byte(nil), ev.Data...)
	}
	return ev, err
}

// next is Next without the copy: ev.Data aliases the reader's buffer and is
// valid until the next call.
func (rr *RecordingReader) next() (RecEvent, error) {
	if rr.err != nil {
		return RecEvent{}, rr.err
	}
	ev, err := rr.read()
	if err != nil {
		rr.err = err
		return RecEvent{}, err
	}
	rr.off += int64(EncodedRecEventSize(ev))
	return ev, nil
}

// read decodes one event starting at rr.off.
func (rr *RecordingReader) read() (RecEvent, error) {
	le := binary.LittleEndian
	h := rr.hdr[:]
	switch _, err := io.ReadFull(rr.r, h); {
	case err == io.EOF:
		return RecEvent{}, io.EOF
	case err == io.ErrUnexpectedEOF:
		return RecEvent{}, fmt.Errorf("%w: event header cut short at offset %d", ErrRecordingTruncated, rr.off)
	case err != nil:
		return RecEvent{}, fmt.Errorf("reading recording at offset %d: %w", rr.off, err)
	}
	if le.Uint32(h[21:25]) != crc32.Checksum(h[:21], recordingCRC) {
		return RecEvent{}, fmt.Errorf("%w: event header CRC mismatch at offset %d", ErrRecordingCorrupt, rr.off)
	}
	ev := RecEvent{
		Kind: RecEventKind(h[0]),
		Conn: le.Uint64(h[1:9]),
		At:   time.Unix(0, int64(le.Uint64(h[9:17]))).UTC(),
	}
	n := le.Uint32(h[17:21])
	switch {
	case ev.Kind != RecOpen && ev.Kind != RecData && ev.Kind != RecClose:
		return RecEvent{}, fmt.Errorf("%w: unknown event kind %d at offset %d", ErrRecordingCorrupt, h[0], rr.off)
	case ev.Kind != RecData && n != 0:
		return RecEvent{}, fmt.Errorf("%w: %s event with %d bytes of data at offset %d", ErrRecordingCorrupt, ev.Kind, n, rr.off)
	case n > MaxRecordingChunk:
		return RecEvent{}, fmt.Errorf("%w: data length %d over the maximum at offset %d", ErrRecordingCorrupt, n, rr.off)
	}
	// The header CRC vouches for n, so a short read below is a true
	// truncation. The buffer grows as bytes arrive, so a length the file
	// does not hold allocates nothing much.
	body, err := readGrowing(rr.r, rr.buf[:0], int(n)+4)
	rr.buf = body
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return RecEvent{}, fmt.Errorf("%w: %s event cut short at offset %d", ErrRecordingTruncated, ev.Kind, rr.off)
	case err != nil:
		return RecEvent{}, fmt.Errorf("reading recording at offset %d: %w", rr.off, err)
	}
	data := body[:n]
	if le.Uint32(body[n:]) != crc32.Checksum(data, recordingCRC) {
		return RecEvent{}, fmt.Errorf("%w: data CRC mismatch at offset %d", ErrRecordingCorrupt, rr.off)
	}
	if n > 0 {
		ev.Data = data
	}
	return ev, nil
}

// readGrowing appends exactly n bytes from r to buf, growing it a step at a
// time so that it never holds much more than what r delivered.
func readGrowing(r io.Reader, buf []byte, n int) ([]byte, error) {
	const step = 256 << 10
	for n > 0 {
		k := min(n, step)
		buf = slices.Grow(buf, k)
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+got]
		if err != nil {
			return buf, err
		}
		n -= k
	}
	return buf, nil
}

// RecordingTail describes how an existing recording ends, for a host that
// appends to it (see ScanRecording).
type RecordingTail struct {
	// End is where the next event goes: just past the last complete event,
	// or past the header; 0 if even the header is cut short.
	End int64
	// Events counts the complete events before End.
	Events int64
	// MaxConn is the highest connection ID before End (0 if none). A host
	// appending numbers its connections above it, so that connections the
	// previous run left open (never closed, after a crash) keep their IDs.
	MaxConn uint64
	// Damage is nil when the file ends exactly at End. Otherwise it says why
	// the bytes from End on are unreadable (ErrRecordingTruncated after a
	// crash mid-event, ErrRecordingCorrupt after a bit flip): events
	// appended after them could never be read, so the host cuts the file at
	// End first (or sets it aside and starts a new one).
	Damage error
}

// ScanRecording reads an existing recording to its end or first damage and
// says where to append. It returns an error, and no tail, only for a file
// that must not be appended to: not a recording (bad magic or header CRC),
// an unknown version, or a failing reader. An empty file gives End 0 and no
// Damage; one cut short inside its header End 0 with Damage
// ErrRecordingTruncated. Either way the host empties it and writes a fresh
// header with NewRecordingWriter.
func ScanRecording(r io.Reader) (RecordingTail, error) {
	cr := &countingReader{r: r}
	rr, err := NewRecordingReader(cr)
	if errors.Is(err, ErrRecordingTruncated) {
		if cr.n == 0 {
			return RecordingTail{}, nil // an empty file: nothing lost
		}
		return RecordingTail{Damage: err}, nil
	}
	if err != nil {
		return RecordingTail{}, err
	}
	tail := RecordingTail{End: rr.Offset()}
	for {
		ev, err := rr.next()
		switch {
		case err == io.EOF:
			return tail, nil
		case errors.Is(err, ErrRecordingTruncated) || errors.Is(err, ErrRecordingCorrupt):
			tail.Damage = err
			return tail, nil
		case err != nil:
			return RecordingTail{}, err
		}
		tail.End = rr.Offset()
		tail.Events++
		tail.MaxConn = max(tail.MaxConn, ev.Conn)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ReplayRecording feeds a whole recording through Decoders, one per
// connection (created at its open event, closed at its close event), and
// calls emit for every record and rejection in arrival order, with the conn
// and the time of the event that completed the line. As with Decoder.Feed,
// l.Record is valid only until emit returns.
//
// A connection ID may be opened again after its close event (hosts should
// not need to, IDs being unique in a file).
//
// Connections still open when the recording ends (the host stopped recording
// or crashed) are not closed: what would have followed is unknown, so their
// unfinished lines are dropped without a verdict. ReplayRecording returns nil
// at a clean end; otherwise the reader's error (ErrRecordingTruncated,
// ErrRecordingCorrupt, a *RecordingVersionError), or ErrRecordingInconsistent,
// after emitting everything before it.
func ReplayRecording(r io.Reader, maxRecordBytes int, emit func(conn uint64, at time.Time, l Line)) error {
	if maxRecordBytes < 1 {
		return fmt.Errorf("replaying recording: maxRecordBytes %d must be at least 1", maxRecordBytes)
	}
	rr, err := NewRecordingReader(r)
	if err != nil {
		return err
	}
	open := make(map[uint64]*Decoder)
	var free []*Decoder // decoders of closed connections, reused
	for {
		off := rr.Offset()
		ev, err := rr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		d := open[ev.Conn]
		if d != nil && ev.Kind == RecOpen {
			return fmt.Errorf("%w: open event at offset %d for connection %d, which is open already", ErrRecordingInconsistent, off, ev.Conn)
		}
		if d == nil && ev.Kind != RecOpen {
			return fmt.Errorf("%w: %s event at offset %d for connection %d, which is not open", ErrRecordingInconsistent, ev.Kind, off, ev.Conn)
		}
		lineAt := func(l Line) { emit(ev.Conn, ev.At, l) }
		switch ev.Kind {
		case RecOpen:
			if n := len(free); n > 0 {
				d, free = free[n-1], free[:n-1]
			} else {
				d = NewDecoder(maxRecordBytes)
			}
			open[ev.Conn] = d
		case RecData:
			d.Feed(ev.Data, lineAt)
		case RecClose:
			d.Close(lineAt)
			delete(open, ev.Conn)
			free = append(free, d)
		}
	}
}
