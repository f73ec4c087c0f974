package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Under systemd the socket is passed in (LISTEN_FDS, LISTEN_PID, fd 3), so
// a restart never refuses a PHP connection: while no daemon runs, the
// kernel queues connections on the socket systemd (here: the test) holds,
// and the next daemon delivers what they carried.
func TestE2ESocketActivation(t *testing.T) {
	t.Parallel()
	lst := newFakeListener(t)
	e := newE2EEnv(t, func(o *e2eOpts) { o.URL = lst.url() })
	l, err := net.Listen("unix", e.o.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	activated := func() *exec.Cmd {
		// sh's $$ is the daemon's PID after exec, as systemd sets it.
		cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -config "$1"`, e2eBin, e.cfgPath)
		cmd.ExtraFiles = []*os.File{f}
		logs := &lockedBuffer{}
		cmd.Stderr = logs
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("daemon stderr:\n%s", logs.String())
			}
		})
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the activated daemon's /healthz", func() (bool, string) {
			code, _, err := e.get("/healthz")
			return err == nil && code == 200, fmt.Sprint(err)
		})
		return cmd
	}
	first := activated()
	e.send(rec("before-restart"))
	e.waitDrained(1)
	stopCmd(t, first)
	e.send(rec("while-down")) // accepted by the kernel: nobody refused it
	second := activated()
	defer stopCmd(t, second)
	waitFor(t, "the record sent while down delivered", func() (bool, string) {
		for _, r := range lst.requests() {
			for _, id := range r.IDs {
				if id == "while-down" {
					return true, ""
				}
			}
		}
		return false, "not yet"
	})
	if _, err := os.Lstat(e.o.Socket); err != nil {
		t.Fatalf("the daemon removed the socket it was given: %v", err)
	}
}

func stopCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Error("daemon did not stop within 10 s")
	}
}
