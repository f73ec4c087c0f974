package main

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitville/apmd/core"
)

// A full queue drops instead of blocking; taking it empties it.
func TestIngestQueueDropsWhenFull(t *testing.T) {
	q := newIngestQueue(10)
	recs := [][]byte{[]byte("12345"), []byte("12345"), []byte("1"), []byte("1")}
	if n := q.pushAll(recs); n != 2 {
		t.Fatalf("took %d records, want the 2 within the cap", n)
	}
	if got := q.take(nil); len(got) != 2 || q.held() != 0 {
		t.Fatalf("took %d, %d bytes left", len(got), q.held())
	}
	if n := q.pushAll(recs[2:]); n != 2 {
		t.Fatalf("after take: %d taken", n)
	}
}

func TestStaleSocketHandling(t *testing.T) {
	dir, _ := os.MkdirTemp("", "apmd")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := removeStaleSocket(path); !errors.Is(err, errSocketBusy) {
		t.Fatalf("live socket: %v, want errSocketBusy", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the file stays, nobody answers: stale
	if err := removeStaleSocket(path); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatal("stale socket not removed")
	}
	os.WriteFile(path, []byte("x"), 0o600)
	if err := removeStaleSocket(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
}

// The request carries the records verbatim, one per line, gzipped, with
// the agent, sequence and bearer headers.
func TestForwarderRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		zr, err := gzip.NewReader(r.Body)
		if err == nil {
			body, _ = io.ReadAll(zr)
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	cfg := DefaultConfig().Forward
	cfg.URL = srv.URL
	key := &apiKey{inline: "s3cret"}
	key.reload()
	f, err := newForwarder(cfg, "agent-1", key)
	if err != nil {
		t.Fatal(err)
	}
	bt := core.Batch{Records: []core.Record{{Seq: 7, Data: []byte(`{"a":1}`)}, {Seq: 8, Data: []byte(`{"b":2}`)}}}
	out := f.send(context.Background(), bt)
	if out.Kind != core.OutcomeHTTP || out.Code != 204 {
		t.Fatalf("outcome %+v", out)
	}
	if string(body) != "{\"a\":1}\n{\"b\":2}\n" {
		t.Fatalf("body %q", body)
	}
	for h, want := range map[string]string{"X-Bitville-Agent": "agent-1", "X-Bitville-Seq": "7-8",
		"Authorization": "Bearer s3cret", "Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"} {
		if got.Header.Get(h) != want {
			t.Errorf("%s: %q, want %q", h, got.Header.Get(h), want)
		}
	}
}

// Redirects come back as answers; they are never followed.
func TestForwarderNeverFollowsRedirects(t *testing.T) {
	followed := false
	mux := http.NewServeMux()
	mux.HandleFunc("/in", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusFound) })
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) { followed = true })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := DefaultConfig().Forward
	cfg.URL, cfg.Gzip = srv.URL+"/in", false
	f, _ := newForwarder(cfg, "a", &apiKey{})
	out := f.send(context.Background(), core.Batch{Records: []core.Record{{Seq: 1, Data: []byte(`{}`)}}})
	if out.Code != http.StatusFound || followed {
		t.Fatalf("outcome %+v, followed %v", out, followed)
	}
}

func TestForwarderClassifiesTransportErrors(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens: refused
	cfg := DefaultConfig().Forward
	cfg.URL = "http://" + addr + "/"
	f, _ := newForwarder(cfg, "a", &apiKey{})
	bt := core.Batch{Records: []core.Record{{Seq: 1, Data: []byte(`{}`)}}}
	if out := f.send(context.Background(), bt); out.Kind != core.OutcomeRefused || out.Label() != "refused" {
		t.Fatalf("refused: %+v", out)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) }))
	defer slow.Close()
	cfg.URL, cfg.Timeout = slow.URL, Duration{50 * time.Millisecond}
	f, _ = newForwarder(cfg, "a", &apiKey{})
	if out := f.send(context.Background(), bt); out.Kind != core.OutcomeTimeout || out.Label() != "timeout" {
		t.Fatalf("timeout: %+v", out)
	}
}

// Environment first, then the key file (re-read on reload), then api_key.
func TestAPIKeyPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	t.Setenv("BITVILLE_APMD_API_KEY", "")
	k, err := newAPIKey(ForwardConfig{APIKey: "inline", APIKeyFile: file})
	if err != nil || k.get() != "from-file" {
		t.Fatalf("file: %q %v", k.get(), err)
	}
	os.WriteFile(file, []byte("rotated"), 0o600)
	if k.reload(); k.get() != "rotated" {
		t.Fatalf("after reload: %q", k.get())
	}
	os.Remove(file)
	if err := k.reload(); err == nil || k.get() != "rotated" {
		t.Fatalf("a failed reload must keep the old key: %q %v", k.get(), err)
	}
	t.Setenv("BITVILLE_APMD_API_KEY", "from-env")
	k, _ = newAPIKey(ForwardConfig{APIKey: "inline", APIKeyFile: file})
	if k.get() != "from-env" || strings.Contains(k.source(), "from-env") {
		t.Fatalf("env: %q (source %q)", k.get(), k.source())
	}
	t.Setenv("BITVILLE_APMD_API_KEY", "")
	k, _ = newAPIKey(ForwardConfig{APIKey: "inline"})
	if k.get() != "inline" {
		t.Fatalf("inline: %q", k.get())
	}
}

func TestRateLimiter(t *testing.T) {
	r := newRateLimiter(time.Second)
	now := time.Unix(0, 0)
	if ok, _ := r.allow("k", now); !ok {
		t.Fatal("first line held back")
	}
	for range 5 {
		if ok, _ := r.allow("k", now.Add(time.Millisecond)); ok {
			t.Fatal("flood let through")
		}
	}
	if ok, held := r.allow("k", now.Add(time.Second)); !ok || held != 5 {
		t.Fatalf("after the period: %v, %d held", ok, held)
	}
}

// A recording cut mid-event by a crash is trimmed on resume, and the new
// run's connections are numbered above the old ones.
func TestRecorderResumesAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic.rec")
	log := newLogger(io.Discard, LogConfig{Level: "info", Format: "text"})
	cfg := RecordConfig{Path: path, MaxBytes: 1 << 20}
	r, err := openRecorder(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1, 0)
	r.event(core.RecEvent{Kind: core.RecOpen, Conn: 5, At: at})
	r.event(core.RecEvent{Kind: core.RecData, Conn: 5, At: at, Data: []byte("{\"a\":1}\n")})
	r.close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{2, 9, 9}) // a crash in the middle of the next event
	f.Close()
	r, err = openRecorder(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if r.connBase() != 5 {
		t.Fatalf("connections restart at %d, want above 5", r.connBase())
	}
	r.event(core.RecEvent{Kind: core.RecClose, Conn: 5, At: at})
	r.close()
	var lines int
	f, _ = os.Open(path)
	defer f.Close()
	if err := core.ReplayRecording(f, 1024, func(uint64, time.Time, core.Line) { lines++ }); err != nil || lines != 1 {
		t.Fatalf("replay: %d lines, %v", lines, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
}

// A socket folder the daemon creates is reachable by PHP despite the
// daemon's umask 077; an existing one keeps its mode.
func TestSocketFolderMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "run", "apm")
	if err := ensureSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Fatalf("created with %v, want 0755", fi.Mode().Perm())
	}
	os.Chmod(dir, 0o750)
	if err := ensureSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o750 {
		t.Fatalf("an existing folder's mode changed to %v", fi.Mode().Perm())
	}
}
