package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFillRecord checks that generated records are JSON objects of exactly
// the asked size carrying the asked correlation id.
func TestFillRecord(t *testing.T) {
	for i, size := range []int{minRecordSize, minRecordSize + 1, minRecordSize + 7, 100, 1000, 1024, 65537} {
		for seed := range uint64(50) {
			checkRecord(t, size, seed*uint64(i+1))
		}
	}
}

// checkRecord fails t unless a record of size bytes is a JSON object of
// exactly that size with the correlation id it was given.
func checkRecord(t *testing.T, size int, seed uint64) {
	t.Helper()
	rec := make([]byte, size)
	fillRecord(rec, 42, seed)
	setID(rec, 1234567890123)
	var v struct {
		CorrelationID string `json:"correlation_id"`
		Pad           string `json:"pad"`
	}
	if err := json.Unmarshal(rec, &v); err != nil {
		t.Fatalf("size %d seed %d: not valid JSON: %v: %q", size, seed, err, rec)
	}
	if len(rec) != size {
		t.Fatalf("size %d: got %d bytes", size, len(rec))
	}
	if v.CorrelationID != "00000001234567890123" {
		t.Fatalf("size %d: correlation_id %q", size, v.CorrelationID)
	}
}

// TestParseSeq checks the X-Bitville-Seq parser.
func TestParseSeq(t *testing.T) {
	good := map[string][2]uint64{"1-1": {1, 1}, "17-5016": {17, 5016}, "0-18446744073709551615": {0, 1<<64 - 1}}
	for h, want := range good {
		f, l, err := parseSeq(h)
		if err != nil || f != want[0] || l != want[1] {
			t.Errorf("parseSeq(%q) = %d, %d, %v; want %d, %d", h, f, l, err, want[0], want[1])
		}
	}
	for _, h := range []string{"", "5", "5-", "-5", "9-3", "a-b", "1-2-3", " 1-2"} {
		if _, _, err := parseSeq(h); err == nil {
			t.Errorf("parseSeq(%q): want an error", h)
		}
	}
}

// TestParseMetrics checks the Prometheus text parser keeps labelled series.
func TestParseMetrics(t *testing.T) {
	in := "# HELP x\nbitville_apmd_records_received_total 12\n" +
		"bitville_apmd_records_rejected_total{reason=\"overload\"} 3\n" +
		"bitville_apmd_records_rejected_total{reason=\"truncated\"} 1\ngo_goroutines 9\n"
	m, err := parseMetrics(strings.NewReader(in))
	if err != nil || m.n(mReceived) != 12 || m.n(mOverload) != 3 || m.sum(mRejected) != 4 || m.has("go_goroutines") {
		t.Fatalf("parseMetrics: %v, %v", m, err)
	}
}
