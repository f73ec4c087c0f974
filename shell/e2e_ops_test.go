package main

// End-to-end: configuration errors, the PHP client, and the traffic
// recording.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bitville/apmd/core"
)

// Test 5: a configuration error exits 78 and stderr names the key (and,
// for an error the TOML decoder finds, the line); so does a missing file.
func TestE2EConfigErrorsExit78(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		old, new string // replace old by new in a valid config
		want     []string
		lineOf   string // stderr must give the line of this text ("": no line asked)
	}{
		{"unknown key", "[buffer]\n", "[buffer]\nmemory_recods = 5\n", []string{"buffer.memory_recods", "unknown key"}, "memory_recods"},
		{"unknown section", "[daemon]\n", "[deamon]\nshutdown_timeout = \"1s\"\n[daemon]\n", []string{"deamon"}, "[deamon]"},
		{"wrong type", "memory_records = 50\n", "memory_records = \"fifty\"\n", []string{"buffer.memory_records"}, "fifty"},
		{"wrong type duration", "max_memory_age = \"200ms\"\n", "max_memory_age = 200\n", []string{"buffer.max_memory_age"}, ""},
		{"bad duration", "max_memory_age = \"200ms\"\n", "max_memory_age = \"soon\"\n", []string{"buffer.max_memory_age"}, "soon"},
		{"TOML syntax", "memory_records = 50\n", "memory_records = = 50\n", nil, "= = 50"},
		{"bad log format", "stats_every = \"0s\"\n", "stats_every = \"0s\"\nformat = \"xml\"\n", []string{"log.format"}, ""},
		{"bad gzip level", "gzip = true\n", "gzip = true\ngzip_level = 12\n", []string{"forward.gzip_level"}, ""},
		{"bad url", "[forward]\nurl = \"", "[forward]\nurl = \"ftp://", []string{"forward.url"}, ""},
		{"admin not loopback", "[admin]\nlisten = \"127.0.0.1:", "[admin]\nlisten = \"0.0.0.0:", []string{"admin.listen"}, ""},
		{"bad socket mode", "[ingest]\n", "[ingest]\nsocket_mode = \"rw\"\n", []string{"ingest.socket_mode"}, ""},
		{"bad breaker", "failures = 2\n", "failures = 0\n", []string{"breaker.failures"}, ""},
		{"bad when_full", "min_free_bytes = 0\n", "min_free_bytes = 0\nwhen_full = \"never\"\n", []string{"when_full"}, ""},
		{"missing api_key_file", "api_key_file = \"\"\n", "api_key_file = \"/nonexistent/apmd.key\"\n", []string{"forward.api_key_file"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newE2EEnv(t, nil)
			cfg := e.config()
			if !strings.Contains(cfg, tc.old) {
				t.Fatalf("test bug: %q not in the config", tc.old)
			}
			cfg = strings.Replace(cfg, tc.old, tc.new, 1)
			if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stderr := e.runToExit()
			if code != exitConfig {
				t.Fatalf("exit code %d, want 78; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, stderr)
				}
			}
			if tc.lineOf != "" {
				line := strings.Count(cfg[:strings.Index(cfg, tc.lineOf)], "\n") + 1
				if !strings.Contains(stderr, e.cfgPath+":"+strconv.Itoa(line)+":") {
					t.Errorf("stderr does not give the line %s:%d:\n%s", e.cfgPath, line, stderr)
				}
			}
			if _, err := os.Stat(e.o.Socket); err == nil {
				t.Errorf("a daemon that refused its config left a socket behind")
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		e := newE2EEnv(t, nil)
		e.cfgPath = filepath.Join(e.dir, "nope.toml")
		code, stderr := e.runToExit()
		if code != exitConfig {
			t.Fatalf("exit code %d, want 78; stderr:\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "nope.toml") {
			t.Errorf("stderr does not name the file:\n%s", stderr)
		}
	})
}

// Test 9: testdata/client.php, the README's snippet, from 8 PHP processes
// at once, 50 records each (one connection per record, as PHP requests
// do): all 400 are delivered.
func TestE2EPHPClient(t *testing.T) {
	t.Parallel()
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatalf("php not found in PATH: install php-cli (apt-get install php-cli; .ci/run installs it): %v", err)
	}
	l := newFakeListener(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = l.url() })
	e.start()
	const procs, each = 8, 50
	var sent []string
	for p := range procs {
		for i := range each {
			sent = append(sent, fmt.Sprintf("php%d-%d", p, i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	for p := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, php, "testdata/client.php", e.o.Socket, fmt.Sprintf("php%d", p), strconv.Itoa(each))
			out, err := cmd.CombinedOutput()
			outs[p], errs[p] = string(out), err
		})
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil {
			t.Errorf("php process %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	e.waitDrained(procs * each)
	checkDelivery(t, l.requests(), sent)
	if got := e.scrape().sum("records_rejected_total"); got != 0 {
		t.Errorf("the PHP client's lines were rejected: %v", got)
	}
}

// The PHP client never makes the request wait: with no daemon, and with
// a peer that accepts but never reads (a write too big for the socket
// buffer is cut short, not waited on), bitville_apm_send returns false at
// once.
func TestE2EPHPClientNeverBlocks(t *testing.T) {
	t.Parallel()
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatalf("php not found in PATH: install php-cli (apt-get install php-cli; .ci/run installs it): %v", err)
	}
	dir, err := os.MkdirTemp("", "apmd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	client, err := filepath.Abs("testdata/client.php")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	sendBig := func() (string, time.Duration) {
		t.Helper()
		code := fmt.Sprintf(`require %q; var_export(bitville_apm_send(%q, ["correlation_id" => "big", "pad" => str_repeat("x", 8 << 20)]));`, client, sock)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, php, "-r", code).CombinedOutput()
		if err != nil {
			t.Fatalf("php: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out)), time.Since(start)
	}
	if out, took := sendBig(); out != "false" || took > 5*time.Second {
		t.Errorf("no daemon: bitville_apm_send = %s after %s, want false at once", out, took)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn // accepted, never read
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	if out, took := sendBig(); out != "false" || took > 5*time.Second {
		t.Errorf("peer not reading: bitville_apm_send = %s after %s, want false (a partial write) at once", out, took)
	}
}

// Test 10: with [record] path set, the recording (mode 0600) replays
// through core's reader to exactly the records and rejections sent.
func TestE2ERecording(t *testing.T) {
	t.Parallel()
	l := newFakeListener(t)
	var recPath string
	e := newE2EEnv(t, func(o *e2eOpts) {
		o.URL = l.url()
		recPath = filepath.Join(filepath.Dir(o.Spool), "traffic.rec")
		o.RecordPath = recPath
	})
	p := e.start()
	conns := map[string][]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, name := range []string{"a", "b"} {
		var chunks []string
		for i := range 30 {
			id := fmt.Sprintf("%s-%02d", name, i)
			conns[name] = append(conns[name], rec(id))
			chunks = append(chunks, rec(id)+"\n")
		}
		if name == "b" {
			chunks = append(chunks, "not json\n")
		}
		wg.Go(func() {
			// Cut the stream at odd places: records span reads.
			all := strings.Join(chunks, "")
			var parts []string
			for len(all) > 0 {
				n := min(len(all), 777)
				parts = append(parts, all[:n])
				all = all[n:]
			}
			errs <- e.trySend(parts...)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.waitDrained(60)
	if code := p.stop(syscall.SIGTERM); code != exitOK {
		t.Fatalf("SIGTERM: exit code %d", code)
	}
	fi, err := os.Stat(recPath)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("recording mode %v, want 0600", mode)
	}
	f, err := os.Open(recPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	replayed := map[uint64][]string{}
	rejects := map[core.RejectReason]int{}
	err = core.ReplayRecording(f, e.o.MaxRecordBytes, func(conn uint64, at time.Time, l core.Line) {
		if l.Reject != "" {
			rejects[l.Reject]++
			return
		}
		replayed[conn] = append(replayed[conn], string(l.Record))
	})
	if err != nil {
		t.Fatalf("replaying the recording: %v", err)
	}
	var got []string
	for _, recs := range replayed {
		got = append(got, strings.Join(recs, "\n"))
	}
	want := []string{strings.Join(conns["a"], "\n"), strings.Join(conns["b"], "\n")}
	if len(got) != 2 || !(got[0] == want[0] && got[1] == want[1] || got[0] == want[1] && got[1] == want[0]) {
		t.Errorf("replayed %d connections with records; want exactly the 2 sent, byte for byte, in order", len(got))
		for conn, recs := range replayed {
			t.Logf("connection %d: %d records, first %.60q", conn, len(recs), recs[0])
		}
	}
	if len(rejects) != 1 || rejects[core.RejectInvalidJSON] != 1 {
		t.Errorf("replayed rejections %v, want invalid_json 1", rejects)
	}
	// The recording holds the bytes as sent, and nothing of the key file or
	// config: a cheap check that it is the traffic and only that.
	raw, _ := os.ReadFile(recPath)
	if !bytes.Contains(raw, []byte(conns["a"][0])) {
		t.Errorf("recording does not hold the records verbatim")
	}
	if bytes.Contains(raw, []byte("api_key")) {
		t.Errorf("the recording holds config text")
	}
}
