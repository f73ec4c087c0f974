package main

// The end-to-end harness: TestMain builds the daemon once; each test writes
// a config.toml into a short temp folder, starts the binary, talks to it
// over its Unix socket and admin endpoints, and scripts a fake listener
// that records every request. Every wait is bounded polling; nothing but
// loopback and Unix sockets is used.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2eBin is the daemon binary TestMain builds.
var e2eBin string

const (
	e2eWait = 15 * time.Second      // upper bound of every wait for a condition
	e2ePoll = 20 * time.Millisecond // how often a condition is checked
)

func TestMain(m *testing.M) { os.Exit(e2eMain(m)) }

func e2eMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "apmd-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	e2eBin = filepath.Join(dir, "bitville-apmd")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	args := []string{"build", "-o", e2eBin}
	if e2eRace {
		args = append(args, "-race") // the daemon's own races show in its stderr and exit code
	}
	cmd := exec.Command(gobin, append(args, "./")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the daemon:", err)
		return 1
	}
	return m.Run()
}

// e2eOpts are the config values a test may change; newE2EEnv fills in the
// small defaults.
type e2eOpts struct {
	URL             string
	Spool           string // default <dir>/spool
	Socket          string // default <dir>/s.sock
	MaxRecordBytes  int
	MemoryRecords   int
	MaxMemoryAge    string
	SegmentBytes    int64
	BatchRecords    int
	Timeout         string
	NoGzip          bool
	APIKey          string
	APIKeyFile      string
	RecordPath      string
	ShutdownTimeout string
	TCP             string // ingest.tcp
	MaxConnections  int
	CAFile          string
}

// e2eEnv is one daemon's folder and configuration; it may start the daemon
// several times (restarts on the same spool).
type e2eEnv struct {
	t       *testing.T
	dir     string
	cfgPath string
	admin   string
	o       e2eOpts
	mu      sync.Mutex
	procs   []*e2eProc
}

func newE2EEnv(t *testing.T, tweak func(*e2eOpts)) *e2eEnv {
	t.Helper()
	// Short: a Unix socket path must stay under ~100 bytes.
	dir, err := os.MkdirTemp("", "apmd")
	if err != nil {
		t.Fatal(err)
	}
	e := &e2eEnv{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), admin: freePort(t)}
	e.o = e2eOpts{
		Spool: filepath.Join(dir, "spool"), Socket: filepath.Join(dir, "s.sock"),
		MaxRecordBytes: 4096, MemoryRecords: 50, MaxMemoryAge: "200ms", SegmentBytes: 8192,
		BatchRecords: 50, Timeout: "5s", ShutdownTimeout: "4s", URL: "http://127.0.0.1:1/v1/ingest",
		MaxConnections: 1024,
	}
	if tweak != nil {
		tweak(&e.o)
	}
	e.writeConfig()
	t.Cleanup(func() {
		e.mu.Lock()
		procs := e.procs
		e.mu.Unlock()
		for _, p := range procs {
			p.kill()
			if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
				t.Errorf("daemon %s (built with -race) reported a data race", p.name)
			}
			if t.Failed() {
				t.Logf("stderr of daemon %s (exit code %d):\n%s", p.name, p.code, p.stderr.String())
			}
		}
		os.RemoveAll(dir)
	})
	return e
}

func (e *e2eEnv) path(name string) string { return filepath.Join(e.dir, name) }

func (e *e2eEnv) config() string {
	o := e.o
	return fmt.Sprintf(`# written by the e2e tests
[ingest]
socket = %q
max_record_bytes = %d
queue_bytes = 4194304
read_bytes = 4096
tcp = %q
max_connections = %d

[buffer]
dir = %q
memory_records = %d
memory_bytes = 1048576
max_memory_age = %q
segment_bytes = %d
disk_bytes = 67108864
min_free_bytes = 0
spill_retry = "100ms"

[forward]
url = %q
api_key = %q
api_key_file = %q
gzip = %t
batch_records = %d
batch_bytes = 1048576
timeout = %q
ca_file = %q
backoff_min = "10ms"
backoff_max = "100ms"
config_retry = "200ms"

[breaker]
failures = 2
open_for = "200ms"
max_open_for = "1s"

[admin]
listen = %q

[log]
level = "info"
stats_every = "0s"

[record]
path = %q

[daemon]
shutdown_timeout = %q
`, o.Socket, o.MaxRecordBytes, o.TCP, o.MaxConnections, o.Spool, o.MemoryRecords, o.MaxMemoryAge, o.SegmentBytes,
		o.URL, o.APIKey, o.APIKeyFile, !o.NoGzip, o.BatchRecords, o.Timeout, o.CAFile, e.admin, o.RecordPath, o.ShutdownTimeout)
}

func (e *e2eEnv) writeConfig() {
	e.t.Helper()
	if err := os.WriteFile(e.cfgPath, []byte(e.config()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// usedPorts keeps two parallel tests from being handed the same free port.
var usedPorts sync.Map

func freePort(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, dup := usedPorts.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// lockedBuffer collects a daemon's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// e2eProc is one run of the daemon.
type e2eProc struct {
	e      *e2eEnv
	name   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	code   int // valid once done is closed
}

// launch starts the daemon without waiting for it.
func (e *e2eEnv) launch() *e2eProc {
	e.t.Helper()
	e.mu.Lock()
	p := &e2eProc{e: e, name: "#" + strconv.Itoa(len(e.procs)+1), stderr: &lockedBuffer{}, done: make(chan struct{})}
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	p.cmd = exec.Command(e2eBin, "-config", e.cfgPath)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BITVILLE_APMD_API_KEY=") { // the key must come from our config
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	return p
}

// start starts the daemon and waits until its socket accepts and /healthz
// answers. If the admin port was taken meanwhile, it retries on another.
func (e *e2eEnv) start() *e2eProc {
	e.t.Helper()
	for attempt := 0; ; attempt++ {
		p := e.launch()
		err := p.waitReady()
		if err == nil {
			return p
		}
		if attempt < 3 && p.exited() && p.code == exitConfig && strings.Contains(p.stderr.String(), "address already in use") {
			e.admin = freePort(e.t)
			e.writeConfig()
			continue
		}
		e.t.Fatalf("daemon %s did not start: %v\nstderr:\n%s", p.name, err, p.stderr.String())
	}
}

func (p *e2eProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *e2eProc) waitReady() error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited with code %d before it was ready", p.code)
		}
		if c, err := net.DialTimeout("unix", p.e.o.Socket, time.Second); err == nil {
			c.Close()
			if code, _, err := p.e.get("/healthz"); err == nil && code == 200 {
				return nil
			}
		}
		time.Sleep(e2ePoll)
	}
	return errors.New("socket and /healthz not up within 10s")
}

// wait waits (bounded) for the process to exit and returns its exit code,
// or -1 after killing it.
func (p *e2eProc) wait(limit time.Duration) int {
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		p.e.t.Errorf("daemon %s did not exit within %s: killed", p.name, limit)
		p.kill()
		return -1
	}
}

// stop sends sig and returns the exit code (bounded: kill -9 after 10 s).
func (p *e2eProc) stop(sig syscall.Signal) int {
	p.e.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		p.e.t.Fatalf("signal %v: %v", sig, err)
	}
	return p.wait(10 * time.Second)
}

// kill is kill -9; it waits until the process is gone.
func (p *e2eProc) kill() {
	if p.exited() {
		return
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// runToExit runs the daemon with the current config and expects it to
// exit by itself (config errors, a locked spool).
func (e *e2eEnv) runToExit() (code int, stderr string) {
	e.t.Helper()
	p := e.launch()
	code = p.wait(10 * time.Second)
	return code, p.stderr.String()
}

// send writes lines, each followed by '\n', on one new connection.
func (e *e2eEnv) send(lines ...string) {
	e.t.Helper()
	if err := e.trySend(strings.Join(lines, "\n") + "\n"); err != nil {
		e.t.Fatal(err)
	}
}

// trySend writes raw bytes on one new connection and closes it; safe from
// any goroutine.
func (e *e2eEnv) trySend(chunks ...string) error {
	c, err := net.DialTimeout("unix", e.o.Socket, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for _, ch := range chunks {
		if _, err := io.WriteString(c, ch); err != nil {
			return err
		}
	}
	return nil
}

func (e *e2eEnv) get(path string) (int, string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + e.admin + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// readyz returns /readyz's code and body.
func (e *e2eEnv) readyz() (int, string) {
	e.t.Helper()
	code, body, err := e.get("/readyz")
	if err != nil {
		e.t.Fatalf("/readyz: %v", err)
	}
	return code, strings.TrimSpace(body)
}

// e2eSample is one line of the Prometheus text format.
type e2eSample struct {
	name   string
	labels map[string]string
	value  float64
}

type e2eMetrics []e2eSample

// scrape reads /metrics.
func (e *e2eEnv) scrape() e2eMetrics {
	e.t.Helper()
	code, body, err := e.get("/metrics")
	if err != nil || code != 200 {
		e.t.Fatalf("/metrics: %d %v", code, err)
	}
	return parseMetrics(body)
}

func parseMetrics(text string) e2eMetrics {
	var out e2eMetrics
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		s := e2eSample{name: series, labels: map[string]string{}, value: v}
		if i := strings.IndexByte(series, '{'); i >= 0 {
			s.name = series[:i]
			for _, kv := range strings.Split(strings.TrimSuffix(series[i+1:], "}"), ",") {
				if k, val, ok := strings.Cut(kv, "="); ok {
					s.labels[k] = strings.Trim(val, `"`)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// find returns the sample bitville_apmd_<name> whose labels include the
// given key/value pairs.
func (m e2eMetrics) find(name string, kv ...string) (float64, bool) {
	for _, s := range m {
		if s.name != ns+"_"+name {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if s.labels[kv[i]] != kv[i+1] {
				match = false
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

// get is find with 0 for a missing series (a counter never bumped).
func (m e2eMetrics) get(name string, kv ...string) float64 {
	v, _ := m.find(name, kv...)
	return v
}

// sum adds every series of bitville_apmd_<name>.
func (m e2eMetrics) sum(name string) float64 {
	var n float64
	for _, s := range m {
		if s.name == ns+"_"+name {
			n += s.value
		}
	}
	return n
}

// metric scrapes one value.
func (e *e2eEnv) metric(name string, kv ...string) float64 {
	e.t.Helper()
	return e.scrape().get(name, kv...)
}

// waitFor polls cond every e2ePoll until it holds, failing the test with
// cond's last description after e2eWait.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", e2eWait, what, state)
		}
		time.Sleep(e2ePoll)
	}
}

// waitMetric waits until bitville_apmd_<name>{kv} equals want.
func (e *e2eEnv) waitMetric(want float64, name string, kv ...string) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%s%v == %v", name, kv, want), func() (bool, string) {
		v := e.metric(name, kv...)
		return v == want, fmt.Sprint(v)
	})
}

// waitDrained waits until every record is resolved: delivered plus
// dropped equals want, and nothing is left in memory, on disk or in flight.
func (e *e2eEnv) waitDrained(want float64) e2eMetrics {
	e.t.Helper()
	var m e2eMetrics
	waitFor(e.t, fmt.Sprintf("%v records delivered or dropped and the buffer empty", want), func() (bool, string) {
		m = e.scrape()
		d, dr := m.get("records_delivered_total"), m.sum("records_dropped_total")
		mem, disk, fl := m.get("buffer_memory_records"), m.get("buffer_disk_records"), m.get("buffer_inflight_records")
		return d+dr == want && mem+disk+fl == 0, fmt.Sprintf("delivered %v dropped %v memory %v disk %v in flight %v", d, dr, mem, disk, fl)
	})
	return m
}

// rec makes one profiling record with a correlation ID.
func rec(id string) string {
	return fmt.Sprintf(`{"correlation_id":%q,"timings":{"wall_ms":12.5,"cpu_ms":7},"spans":[{"name":"db.query","ms":3.25}]}`, id)
}

// recPadded makes a record of at least n bytes.
func recPadded(id string, n int) string {
	r := rec(id)
	if pad := n - len(r) - len(`,"pad":""`); pad > 0 {
		r = strings.TrimSuffix(r, "}") + `,"pad":"` + strings.Repeat("x", pad) + `"}`
	}
	return r
}
