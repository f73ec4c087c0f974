package main

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The optional loopback TCP listener takes records like the Unix socket.
func TestE2ETCPIngest(t *testing.T) {
	t.Parallel()
	lst := newFakeListener(t)
	tcp := freePort(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL, o.TCP = lst.url(), tcp })
	p := e.start()
	defer p.stop(syscall.SIGTERM)
	var c net.Conn
	waitFor(t, "the TCP listener", func() (bool, string) {
		var err error
		c, err = net.DialTimeout("tcp", tcp, time.Second)
		return err == nil, "dial failed"
	})
	c.Write([]byte(rec("over-tcp") + "\n"))
	c.Close()
	e.waitDrained(1)
}

// Connections beyond max_connections are closed at once and counted; the
// ones within the cap keep working.
func TestE2EMaxConnections(t *testing.T) {
	t.Parallel()
	lst := newFakeListener(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL, o.MaxConnections = lst.url(), 2 })
	p := e.start()
	defer p.stop(syscall.SIGTERM)
	// start's readiness probe connects too: let its reader finish first.
	waitFor(t, "no connection open", func() (bool, string) {
		return e.metric("ingest_connections") == 0, "not yet"
	})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("unix", e.o.Socket)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "two connections open", func() (bool, string) {
		return e.metric("ingest_connections") == 2, "not yet"
	})
	extra, err := net.Dial("unix", e.o.Socket)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection over the cap was not closed")
	}
	e.waitMetric(1, "ingest_connections_refused_total")
	held[0].Write([]byte(rec("within-cap") + "\n"))
	for _, c := range held {
		c.Close()
	}
	e.waitDrained(1)
}

// SIGHUP re-reads api_key_file: the next request carries the new key.
func TestE2ESIGHUPReloadsKey(t *testing.T) {
	t.Parallel()
	lst := newFakeListener(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = lst.url() })
	keyFile := e.path("api.key")
	os.WriteFile(keyFile, []byte("old-key\n"), 0o600)
	e.o.APIKeyFile = keyFile
	e.writeConfig()
	p := e.start()
	defer p.stop(syscall.SIGTERM)
	e.send(rec("a"))
	e.waitDrained(1)
	os.WriteFile(keyFile, []byte("new-key\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload logged", func() (bool, string) {
		return strings.Contains(p.stderr.String(), "API key reloaded"), "not yet"
	})
	e.send(rec("b"))
	e.waitDrained(2)
	reqs := lst.requests()
	if reqs[0].Auth != "Bearer old-key" || reqs[len(reqs)-1].Auth != "Bearer new-key" {
		t.Fatalf("keys: first %q last %q", reqs[0].Auth, reqs[len(reqs)-1].Auth)
	}
	if strings.Contains(p.stderr.String(), "new-key") || strings.Contains(p.stderr.String(), "old-key") {
		t.Fatal("a key reached the log")
	}
}

// TLS: the listener is verified against forward.ca_file.
func TestE2ETLSWithCAFile(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = srv.URL + "/v1/ingest" })
	ca := e.path("ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	// Without the CA the listener is not trusted: nothing is delivered.
	p := e.start()
	e.send(rec("tls"))
	waitFor(t, "a failed TLS attempt", func() (bool, string) {
		return e.metric("forward_requests_total", "code", "error") >= 1, "not yet"
	})
	if got.Load() != 0 {
		t.Fatal("an untrusted listener got the records")
	}
	p.stop(syscall.SIGTERM)
	e.o.CAFile = ca
	e.writeConfig()
	p = e.start()
	defer p.stop(syscall.SIGTERM)
	e.waitDrained(1)
}

// A graceful stop waits (up to half of shutdown_timeout) for clients that
// are still connected; a second signal cuts that wait short and goes
// straight to the spill, losing nothing already read.
func TestE2ESecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := newE2EEnv(t, func(o *e2eOpts) { o.ShutdownTimeout, o.MaxMemoryAge = "30s", "1m" })
	p := e.start()
	idle, err := net.Dial("unix", e.o.Socket) // a client that never closes
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Write([]byte(rec("from-idle-client") + "\n"))
	e.send(rec("a"), rec("b"))
	e.waitMetric(3, "records_received_total")
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the stop to begin", func() (bool, string) {
		return strings.Contains(p.stderr.String(), "msg=stopping"), "not yet"
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the second signal did not cut the 15 s wait short: %s", took)
	}
	if !strings.Contains(p.stderr.String(), "second signal") {
		t.Fatal("no log line about the second signal")
	}
	p = e.start()
	defer p.stop(syscall.SIGTERM)
	e.waitMetric(3, "records_recovered_total")
}
