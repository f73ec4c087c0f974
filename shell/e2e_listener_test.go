package main

// The fake central listener of the end-to-end tests, and the checks of
// what it received against what was sent.

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRequest is one request the listener saw.
type fakeRequest struct {
	N           int
	At          time.Time
	Method      string
	Path        string
	Agent       string
	Seq         string
	Auth        string
	Encoding    string
	ContentType string
	First, Last uint64
	Lines       []string
	IDs         []string // correlation_id of each line
	Problems    []string // protocol violations found while reading it
	Incomplete  bool     // the client gave up while sending the body
	Code        int      // the answer given; -1 none (the client gave up), -2 connection closed
}

// fakeAnswer is what the listener answers to one request.
type fakeAnswer struct {
	Code       int
	RetryAfter string
	Location   string
	Sleep      time.Duration // before answering (cut short when the client gives up)
	Close      bool          // close the connection without an answer
}

// fakeListener is a scriptable central listener on httptest.
type fakeListener struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []*fakeRequest
	answer  func(*fakeRequest) fakeAnswer
	hold    chan struct{} // non-nil: requests wait until it is closed
	closing chan struct{}
}

func newFakeListener(t *testing.T) *fakeListener {
	l := &fakeListener{t: t, closing: make(chan struct{}),
		answer: func(*fakeRequest) fakeAnswer { return fakeAnswer{Code: 200} }}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(func() {
		close(l.closing) // unblocks held and sleeping handlers
		l.srv.Close()
	})
	return l
}

func (l *fakeListener) url() string { return l.srv.URL + "/v1/ingest" }

// setAnswer scripts the answers from now on.
func (l *fakeListener) setAnswer(f func(*fakeRequest) fakeAnswer) {
	l.mu.Lock()
	l.answer = f
	l.mu.Unlock()
}

// answerCode answers every request with code.
func (l *fakeListener) answerCode(code int) {
	l.setAnswer(func(*fakeRequest) fakeAnswer { return fakeAnswer{Code: code} })
}

// holdRequests makes requests wait for release before they are answered.
func (l *fakeListener) holdRequests() {
	l.mu.Lock()
	l.hold = make(chan struct{})
	l.mu.Unlock()
}

func (l *fakeListener) release() {
	l.mu.Lock()
	if l.hold != nil {
		close(l.hold)
		l.hold = nil
	}
	l.mu.Unlock()
}

// requests returns a copy of every request seen so far.
func (l *fakeListener) requests() []fakeRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]fakeRequest, len(l.reqs))
	for i, r := range l.reqs {
		out[i] = *r
	}
	return out
}

func (l *fakeListener) serve(w http.ResponseWriter, r *http.Request) {
	fr := &fakeRequest{At: time.Now(), Method: r.Method, Path: r.URL.Path, Agent: r.Header.Get("X-Bitville-Agent"),
		Seq: r.Header.Get("X-Bitville-Seq"), Auth: r.Header.Get("Authorization"),
		Encoding: r.Header.Get("Content-Encoding"), ContentType: r.Header.Get("Content-Type"), Code: -1}
	fr.read(r)
	l.mu.Lock()
	fr.N = len(l.reqs)
	l.reqs = append(l.reqs, fr)
	hold := l.hold
	answer := l.answer
	l.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		case <-l.closing:
			return
		case <-time.After(e2eWait):
		}
	}
	a := answer(fr)
	if a.Sleep > 0 {
		select {
		case <-time.After(a.Sleep):
		case <-r.Context().Done():
		case <-l.closing:
		}
	}
	if r.Context().Err() != nil {
		return // the client gave up: Code stays -1
	}
	if a.Close {
		l.setCode(fr, -2)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	if a.Location != "" {
		w.Header().Set("Location", a.Location)
	}
	l.setCode(fr, a.Code) // before the answer leaves: the daemon may act on it at once
	w.WriteHeader(a.Code)
}

func (l *fakeListener) setCode(fr *fakeRequest, code int) {
	l.mu.Lock()
	fr.Code = code
	l.mu.Unlock()
}

// read decodes the body and checks it against the protocol of DESIGN 4.2.
func (fr *fakeRequest) read(r *http.Request) {
	bad := func(format string, args ...any) { fr.Problems = append(fr.Problems, fmt.Sprintf(format, args...)) }
	var body io.Reader = r.Body
	if fr.Encoding == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			bad("gzip: %v", err)
			return
		}
		body = zr
	} else if fr.Encoding != "" {
		bad("unexpected Content-Encoding %q", fr.Encoding)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		if r.Context().Err() != nil {
			fr.Incomplete = true // cancelled mid-body (a stop): never answered
			return
		}
		bad("reading the body: %v", err)
		return
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		bad("body does not end with a newline")
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			bad("line is not a JSON object: %.60q", line)
		}
		id, _ := obj["correlation_id"].(string)
		fr.Lines = append(fr.Lines, line)
		fr.IDs = append(fr.IDs, id)
	}
	first, last, ok := strings.Cut(fr.Seq, "-")
	f, err1 := strconv.ParseUint(first, 10, 64)
	la, err2 := strconv.ParseUint(last, 10, 64)
	switch {
	case !ok || err1 != nil || err2 != nil || la < f:
		bad("bad X-Bitville-Seq %q", fr.Seq)
	case la-f+1 != uint64(len(fr.Lines)):
		bad("X-Bitville-Seq %q names %d records but the body holds %d lines", fr.Seq, la-f+1, len(fr.Lines))
	}
	fr.First, fr.Last = f, la
	if fr.Agent == "" {
		bad("no X-Bitville-Agent")
	}
	if fr.Method != http.MethodPost {
		bad("method %s, want POST", fr.Method)
	}
	if fr.ContentType != "application/x-ndjson" {
		bad("Content-Type %q", fr.ContentType)
	}
}

// checkDelivery checks every request against the protocol and the records
// sent, and returns the correlation IDs in the order of their first
// delivery (a 2xx answer). A record may be delivered again only under the
// same sequence number; no sequence number may name two records; each
// sent record is delivered at least once, except those in dropped; nothing
// else is delivered; first deliveries come in increasing sequence order.
func checkDelivery(t *testing.T, reqs []fakeRequest, sent []string, dropped ...string) []string {
	t.Helper()
	seqOf := map[string]uint64{}
	idOf := map[uint64]string{}
	agents := map[string]bool{}
	for _, r := range reqs {
		if r.Incomplete {
			continue
		}
		for _, p := range r.Problems {
			t.Errorf("request %d (%s): %s", r.N, r.Seq, p)
		}
		agents[r.Agent] = true
		if r.First+uint64(len(r.IDs))-1 != r.Last {
			continue // reported above
		}
		for i, id := range r.IDs {
			seq := r.First + uint64(i)
			if prev, ok := idOf[seq]; ok && prev != id {
				t.Errorf("sequence number %d names two records: %q and %q", seq, prev, id)
			}
			if prev, ok := seqOf[id]; ok && prev != seq {
				t.Errorf("record %q sent under two sequence numbers: %d and %d", id, prev, seq)
			}
			idOf[seq], seqOf[id] = id, seq
		}
	}
	if len(agents) > 1 {
		t.Errorf("X-Bitville-Agent changed: %v", agents)
	}
	want := map[string]bool{}
	for _, id := range sent {
		if want[id] {
			t.Fatalf("test bug: %q sent twice", id)
		}
		want[id] = true
	}
	isDropped := map[string]bool{}
	for _, id := range dropped {
		isDropped[id] = true
	}
	var order []string
	got := map[string]bool{}
	var maxSeq uint64
	haveMax := false
	for _, r := range reqs {
		if r.Code < 200 || r.Code > 299 {
			continue
		}
		for i, id := range r.IDs {
			seq := r.First + uint64(i)
			if !want[id] {
				t.Errorf("delivered %q (seq %d), which was never sent", id, seq)
			}
			if isDropped[id] {
				t.Errorf("delivered %q (seq %d), which should have been dead-lettered", id, seq)
			}
			if got[id] {
				continue // a redelivery under the same number (checked above)
			}
			if haveMax && seq <= maxSeq {
				t.Errorf("first delivery out of order: seq %d (%q) after %d", seq, id, maxSeq)
			}
			maxSeq, haveMax = seq, true
			got[id] = true
			order = append(order, id)
		}
	}
	var missing []string
	for _, id := range sent {
		if !got[id] && !isDropped[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d records never delivered, e.g. %.5q", len(missing), len(sent), missing)
	}
	return order
}

// checkOrderWithin checks that the IDs of each sender (the part before the
// last '-') appear in increasing order of their number.
func checkOrderWithin(t *testing.T, order []string) {
	t.Helper()
	last := map[string]int{}
	for _, id := range order {
		i := strings.LastIndexByte(id, '-')
		n, err := strconv.Atoi(id[i+1:])
		if err != nil {
			t.Fatalf("test bug: ID %q", id)
		}
		if prev, ok := last[id[:i]]; ok && n <= prev {
			t.Errorf("records of one connection out of order: %q after number %d", id, prev)
		}
		last[id[:i]] = n
	}
}

// deadLetterFiles returns the contents of the files in <spool>/dead-letter.
func (e *e2eEnv) deadLetterFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.o.Spool, "dead-letter"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.o.Spool, "dead-letter", ent.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}
