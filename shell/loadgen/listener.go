package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// sink is the loopback listener the daemon forwards to. It counts records
// by the X-Bitville-Seq header (first-last, inclusive) and discards the body
// without decompressing it.
type sink struct {
	srv *http.Server
	url string

	mu sync.Mutex
	st sinkStats
}

// sinkStats is what the sink has seen.
type sinkStats struct {
	first, last time.Time // arrival of the first request, end of the latest one
	requests    int64
	records     int64 // by the seq headers, repeats included
	bodyBytes   int64 // as sent, compressed or not
	badSeq      int64 // requests without a parsable seq header
	repeats     int64 // records at or below the highest seq seen before
	maxSeq      uint64
}

// startSink serves on a free loopback port.
func startSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + l.Addr().String() + "/v1/ingest"}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s, nil
}

// ServeHTTP answers 200 to every request after reading its body.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	n, _ := io.Copy(io.Discard, r.Body)
	first, last, err := parseSeq(r.Header.Get("X-Bitville-Seq"))
	s.mu.Lock()
	if s.st.requests == 0 {
		s.st.first = start
	}
	s.st.requests++
	s.st.bodyBytes += n
	if err != nil {
		s.st.badSeq++
	} else {
		s.count(first, last)
	}
	s.st.last = time.Now()
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// count adds one batch's range; the caller holds mu.
func (s *sink) count(first, last uint64) {
	s.st.records += int64(last - first + 1)
	if first <= s.st.maxSeq {
		s.st.repeats += int64(min(last, s.st.maxSeq) - first + 1)
	}
	s.st.maxSeq = max(s.st.maxSeq, last)
}

func (s *sink) stats() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *sink) close() { s.srv.Close() }

// parseSeq parses an X-Bitville-Seq header, "first-last" with first <= last.
func parseSeq(h string) (first, last uint64, err error) {
	a, b, ok := strings.Cut(h, "-")
	if !ok {
		return 0, 0, fmt.Errorf("seq header %q: want first-last", h)
	}
	if first, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("seq header %q: %w", h, err)
	}
	if last, err = strconv.ParseUint(b, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("seq header %q: %w", h, err)
	}
	if last < first {
		return 0, 0, errors.New("seq header " + strconv.Quote(h) + ": last before first")
	}
	return first, last, nil
}

// postBaseline is the drain baseline: it POSTs n records of size bytes to
// url in batches of per records built in memory (gzip level 1 when zip),
// one request at a time, as the daemon does but with no spool behind it.
func postBaseline(url string, n, size, per int, zip bool) (time.Duration, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	line := size + 1
	raw := make([]byte, per*line)
	for i := range per {
		fillRecord(raw[i*line:i*line+size], 0, uint64(i))
		raw[i*line+size] = '\n'
	}
	var body bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&body, 1)
	start := time.Now()
	for seq := 1; seq <= n; seq += per {
		k := min(per, n-seq+1)
		for i := range k {
			setID(raw[i*line:], uint64(seq+i))
		}
		body.Reset()
		if zip {
			zw.Reset(&body)
			zw.Write(raw[:k*line])
			zw.Close()
		} else {
			body.Write(raw[:k*line])
		}
		if err := post(client, url, body.Bytes(), seq, seq+k-1, zip); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// post sends one batch like the daemon's forwarder does.
func post(client *http.Client, url string, body []byte, first, last int, zip bool) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("X-Bitville-Seq", strconv.Itoa(first)+"-"+strconv.Itoa(last))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("baseline POST: %s", resp.Status)
	}
	return nil
}
