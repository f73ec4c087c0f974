package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The segment format, version 1 (see FORMAT.md for the byte diagram).
const (
	segmentMagic      = "BVAPMSEG"
	segmentVersion    = 1
	segmentHeaderSize = 56
	frameHeaderSize   = 20
	frameMarker       = 0x1EAF5EB7 // "\xb7\x5e\xaf\x1e" on disk: marks where a frame starts, for resync
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentHeader describes one segment file. It is written once, with the
// records, so that Open can index a segment by reading 56 bytes.
type segmentHeader struct {
	Version      uint16
	Count        uint32 // records in the file
	First, Last  uint64 // sequence numbers of the first and last record
	PayloadBytes uint64 // record bytes, without framing
	OldestNanos  int64  // arrival time of the oldest record, Unix nanoseconds
}

// fileBytes is the exact size of a well-formed segment with this header.
func (h segmentHeader) fileBytes() int64 {
	return segmentHeaderSize + int64(h.Count)*frameHeaderSize + int64(h.PayloadBytes)
}

// ErrBadHeader marks a segment header that fails its magic or checksum.
var ErrBadHeader = errors.New("segment header damaged")

// UnknownVersionError refuses a segment or meta file written by a newer
// format: it is never overwritten or quarantined, the daemon stops instead.
type UnknownVersionError struct {
	File    string
	Version int
}

func (e *UnknownVersionError) Error() string {
	return fmt.Sprintf("%s: unknown format version %d (this build reads version %d); upgrade the daemon or move the file away", e.File, e.Version, segmentVersion)
}

func appendHeader(dst []byte, h segmentHeader) []byte {
	start := len(dst)
	dst = append(dst, segmentMagic...)
	dst = binary.LittleEndian.AppendUint16(dst, h.Version)
	dst = binary.LittleEndian.AppendUint16(dst, 0) // flags
	dst = binary.LittleEndian.AppendUint32(dst, h.Count)
	dst = binary.LittleEndian.AppendUint64(dst, h.First)
	dst = binary.LittleEndian.AppendUint64(dst, h.Last)
	dst = binary.LittleEndian.AppendUint64(dst, h.PayloadBytes)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.OldestNanos))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return binary.LittleEndian.AppendUint32(dst, 0) // reserved
}

// parseHeader reads a header; an unknown version with a valid checksum is an
// UnknownVersionError, anything else malformed is ErrBadHeader.
func parseHeader(b []byte) (segmentHeader, error) {
	if len(b) < segmentHeaderSize || string(b[:8]) != segmentMagic {
		return segmentHeader{}, ErrBadHeader
	}
	le := binary.LittleEndian
	if le.Uint32(b[48:52]) != crc32.Checksum(b[:48], castagnoli) {
		return segmentHeader{}, ErrBadHeader
	}
	h := segmentHeader{
		Version:      le.Uint16(b[8:10]),
		Count:        le.Uint32(b[12:16]),
		First:        le.Uint64(b[16:24]),
		Last:         le.Uint64(b[24:32]),
		PayloadBytes: le.Uint64(b[32:40]),
		OldestNanos:  int64(le.Uint64(b[40:48])),
	}
	if h.Version != segmentVersion {
		return h, &UnknownVersionError{Version: int(h.Version)}
	}
	if h.Count == 0 || h.Last < h.First || h.Last-h.First < uint64(h.Count)-1 {
		return segmentHeader{}, ErrBadHeader
	}
	return h, nil
}

// appendFrame frames one record: marker, length, sequence number, CRC32C of
// (length, sequence number, payload), payload.
func appendFrame(dst []byte, seq uint64, data []byte) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, frameMarker)
	start := len(dst)
	dst = le.AppendUint32(dst, uint32(len(data)))
	dst = le.AppendUint64(dst, seq)
	sum := crc32.Update(crc32.Checksum(dst[start:], castagnoli), castagnoli, data)
	dst = le.AppendUint32(dst, sum)
	return append(dst, data...)
}

// encodeSegment builds a whole segment file in memory.
func encodeSegment(recs []memRecord) []byte { return appendSegment(nil, recs) }

// appendSegment builds a whole segment file in dst[:0], reusing its space:
// a spill of 4 MiB would otherwise allocate and zero 4 MiB each time.
func appendSegment(dst []byte, recs []memRecord) []byte {
	h := segmentHeader{Version: segmentVersion, Count: uint32(len(recs)), First: recs[0].seq, Last: recs[len(recs)-1].seq}
	h.OldestNanos = recs[0].at.UnixNano()
	size := segmentHeaderSize
	for _, r := range recs {
		h.PayloadBytes += uint64(len(r.data))
		size += frameHeaderSize + len(r.data)
	}
	if cap(dst) < size {
		dst = make([]byte, 0, size)
	}
	buf := appendHeader(dst[:0], h)
	for _, r := range recs {
		buf = appendFrame(buf, r.seq, r.data)
	}
	return buf
}

// Damage describes a stretch of a segment that held no valid frame.
type Damage struct {
	Offset int64 // where the bad stretch starts
	Bytes  int64 // how long it is
}

// decodeFrames reads the frames in body (the file after its header, at
// file offset base) whose sequence numbers increase within [lo, hi]. A bad
// frame costs only itself: the reader resyncs on the next marker that
// starts a valid frame. The records alias body.
func decodeFrames(body []byte, base int64, lo, hi uint64) (recs []Record, damage []Damage) {
	pos, badStart := 0, -1
	next := lo
	for pos < len(body) {
		seq, n, ok := frameAt(body, pos)
		if ok && seq >= next && seq <= hi {
			if badStart >= 0 {
				damage = append(damage, Damage{Offset: base + int64(badStart), Bytes: int64(pos - badStart)})
				badStart = -1
			}
			recs = append(recs, Record{Seq: seq, Data: body[pos+frameHeaderSize : pos+n : pos+n]})
			pos += n
			next = seq + 1
			continue
		}
		if badStart < 0 {
			badStart = pos
		}
		pos = resync(body, pos+1)
	}
	if badStart >= 0 {
		damage = append(damage, Damage{Offset: base + int64(badStart), Bytes: int64(len(body) - badStart)})
	}
	return recs, damage
}

var markerBytes = binary.LittleEndian.AppendUint32(nil, frameMarker)

// resync finds the next frame marker at or after pos.
func resync(body []byte, pos int) int {
	if pos >= len(body) {
		return len(body)
	}
	i := bytes.Index(body[pos:], markerBytes)
	if i < 0 {
		return len(body)
	}
	return pos + i
}

// frameAt validates the frame starting at pos and returns its sequence
// number and total length.
func frameAt(body []byte, pos int) (seq uint64, n int, ok bool) {
	le := binary.LittleEndian
	if len(body)-pos < frameHeaderSize || le.Uint32(body[pos:]) != frameMarker {
		return 0, 0, false
	}
	length := int(le.Uint32(body[pos+4:]))
	if length > len(body)-pos-frameHeaderSize {
		return 0, 0, false
	}
	seq = le.Uint64(body[pos+8:])
	data := body[pos+frameHeaderSize : pos+frameHeaderSize+length]
	sum := crc32.Update(crc32.Checksum(body[pos+4:pos+16], castagnoli), castagnoli, data)
	if sum != le.Uint32(body[pos+16:]) {
		return 0, 0, false
	}
	return seq, frameHeaderSize + length, true
}
