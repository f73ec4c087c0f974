package main

import (
	"bufio"
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
	"syscall"
	"time"
)

// Metric names the tool reads (DESIGN 4.5).
const (
	mReceived    = "bitville_apmd_records_received_total"
	mRejected    = "bitville_apmd_records_rejected_total"
	mOverload    = `bitville_apmd_records_rejected_total{reason="overload"}`
	mDelivered   = "bitville_apmd_records_delivered_total"
	mRecovered   = "bitville_apmd_records_recovered_total"
	mMemRecords  = "bitville_apmd_buffer_memory_records"
	mDiskRecords = "bitville_apmd_buffer_disk_records"
	mInFlight    = "bitville_apmd_buffer_inflight_records"
)

// daemonConfig is what a phase sets in the daemon's config; every other
// key keeps its default.
type daemonConfig struct {
	spool      string
	url        string // forward.url; a closed loopback port means "listener down"
	memRecords int
	memBytes   int64
	maxAge     string
	diskBytes  int64
	gzip       bool
}

// baseConfig is the shipped config.toml's buffer settings. Its batch
// limits (5000 records, 4 MiB) are written out too, since a config that
// leaves them out gets core's smaller defaults (500 records).
func baseConfig(spool, url string) daemonConfig {
	return daemonConfig{spool: spool, url: url, memRecords: 10000, memBytes: 64 << 20,
		maxAge: "1s", diskBytes: 2 << 30, gzip: true}
}

// toml renders the config file.
func (c daemonConfig) toml(sock, admin string) string {
	return fmt.Sprintf(`[ingest]
socket = %q
[buffer]
dir = %q
memory_records = %d
memory_bytes = %d
max_memory_age = %q
disk_bytes = %d
[forward]
url = %q
gzip = %t
gzip_level = 1
batch_records = 5000
batch_bytes = 4194304
[admin]
listen = %q
[log]
stats_every = "0s"
`, sock, c.spool, c.memRecords, c.memBytes, c.maxAge, c.diskBytes, c.url, c.gzip, admin)
}

// daemonProc is one running daemon.
type daemonProc struct {
	cmd     *exec.Cmd
	name    string
	sock    string
	admin   string
	logPath string
	client  *http.Client
	done    chan struct{} // closed when the process has exited
	exitAt  time.Time
	waitErr error
}

// startDaemon writes a config for c and starts the daemon, returning once
// its metrics answer.
func (e *env) startDaemon(name string, c daemonConfig) (*daemonProc, error) {
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &daemonProc{name: name, sock: filepath.Join(e.sockDir, name+".sock"), admin: admin,
		logPath: filepath.Join(e.root, name+".log"), client: &http.Client{Timeout: 5 * time.Second},
		done: make(chan struct{})}
	cfgPath := filepath.Join(e.root, name+".toml")
	if err := os.WriteFile(cfgPath, []byte(c.toml(p.sock, admin)), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(e.bin, "-config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group, so that Ctrl-C reaches only loadgen (which
	// then kills it), and killed with loadgen if loadgen is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.bin, err)
	}
	e.track(p)
	go func() { p.waitErr = p.cmd.Wait(); p.exitAt = time.Now(); close(p.done) }()
	return p, p.waitReady(60 * time.Second)
}

// waitReady waits until the socket exists and /metrics has a snapshot.
func (p *daemonProc) waitReady(timeout time.Duration) error {
	_, _, err := p.watch("starting "+p.name, timeout, 20*time.Millisecond, func(m metricsMap) (bool, string, error) {
		_, err := os.Stat(p.sock)
		return err == nil && m.has(mReceived), "waiting for the socket and /metrics", nil
	})
	return err
}

// exited reports whether the process has ended.
func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to timeout for the exit; it returns the
// time from the signal to the exit and the exit code.
func (p *daemonProc) stop(timeout time.Duration) (time.Duration, int, error) {
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		return 0, -1, err
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return 0, -1, fmt.Errorf("%s did not exit within %s of SIGTERM (killed); log: %s%s", p.name, timeout, p.logPath, p.logTail())
	}
	code := p.cmd.ProcessState.ExitCode()
	if code != 0 {
		return p.exitAt.Sub(sent), code, fmt.Errorf("%s exited %d after SIGTERM; log: %s%s", p.name, code, p.logPath, p.logTail())
	}
	return p.exitAt.Sub(sent), code, nil
}

// kill ends the process at once (cleanup only).
func (p *daemonProc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail returns the last lines of the daemon's log, for error messages.
func (p *daemonProc) logTail() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 4096 {
		f.Seek(-4096, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return "\n--- daemon log (tail) ---\n" + string(b) + "---"
}

// rss reads the process's resident set size from /proc.
func (p *daemonProc) rss() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// metricsMap holds one scrape: "name{labels}" -> value.
type metricsMap map[string]float64

func (m metricsMap) has(k string) bool { _, ok := m[k]; return ok }

// n returns a metric as an integer (0 when absent).
func (m metricsMap) n(k string) int64 { return int64(m[k]) }

// sum adds every series of a metric name, whatever its labels.
func (m metricsMap) sum(name string) int64 {
	var t float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return int64(t)
}

// scrape reads /metrics.
func (p *daemonProc) scrape() (metricsMap, error) {
	resp, err := p.client.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

// parseMetrics parses the Prometheus text format, keeping the bitville_apmd_
// series.
func parseMetrics(r io.Reader) (metricsMap, error) {
	m := metricsMap{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "bitville_apmd_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// deadURL is a forward.url on a closed loopback port: the listener is down.
func deadURL() (string, error) {
	a, err := freePort()
	return "http://" + a + "/v1/ingest", err
}
