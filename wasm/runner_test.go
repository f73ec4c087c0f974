package wasm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var guest struct {
	once sync.Once
	wasm []byte
	err  error
}

// guestWasm builds testdata/guest for wasip1 once per test process. A missing
// `go` command fails the test rather than skipping it: without it nothing in
// this package is checked.
func guestWasm(t *testing.T) []byte {
	t.Helper()
	guest.once.Do(func() {
		dir, err := os.MkdirTemp("", "wasm-guest")
		if err != nil {
			guest.err = err
			return
		}
		defer os.RemoveAll(dir)
		guest.wasm, guest.err = buildGuest(filepath.Join(dir, "guest.wasm"))
	})
	if guest.err != nil {
		t.Fatalf("building the wasip1 test guest: %v", guest.err)
	}
	return guest.wasm
}

// buildGuest runs `go build` for GOOS=wasip1 GOARCH=wasm and returns the binary.
func buildGuest(out string) ([]byte, error) { return buildWasip1(out, "./testdata/guest") }

// buildWasip1 builds package pkg for GOOS=wasip1 GOARCH=wasm.
func buildWasip1(out, pkg string) ([]byte, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return nil, errNoGo{err}
	}
	cmd := exec.Command(goCmd, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, errBuild{err, msg}
	}
	return os.ReadFile(out)
}

type errNoGo struct{ err error }

func (e errNoGo) Error() string {
	return "the go command is not on PATH; install Go or add it to PATH: " + e.err.Error()
}

type errBuild struct {
	err error
	out []byte
}

func (e errBuild) Error() string { return e.err.Error() + "\n" + string(e.out) }

// runGuest runs the guest with opts, capturing its output.
func runGuest(t *testing.T, opts Options, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errOut
	code, err := Run(context.Background(), guestWasm(t), append([]string{"guest.wasm"}, args...), opts)
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errOut.String())
	}
	return code, out.String()
}

// hostOptions is HostOptions with GUEST_VAR added, failing the test on error.
func hostOptions(t *testing.T) Options {
	t.Helper()
	opts, err := HostOptions()
	if err != nil {
		t.Fatal(err)
	}
	opts.Stdin = nil
	opts.Env = append(opts.Env, "GUEST_VAR=from-host")
	return opts
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("output lacks %q; got:\n%s", l, out)
		}
	}
}

func TestHostModePassesArgsEnvFilesAndExitCode(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, exit := range []string{"0", "3"} {
		dir := t.TempDir()
		code, out := runGuest(t, hostOptions(t), "-exit", exit, "-dir", dir, "x y")
		if want := int(exit[0] - '0'); code != want {
			t.Errorf("exit code = %d, want %d; output:\n%s", code, want, out)
		}
		wantLines(t, out,
			`args=["-exit" "`+exit+`" "-dir" "`+dir+`" "x y"]`,
			"env=from-host",
			"wd="+wd+" err=<nil>",
			"write err=<nil>",
			"read=hello from wasm err=<nil>",
			"dirsync err=<nil>")
		if b, err := os.ReadFile(filepath.Join(dir, "hello.txt")); string(b) != "hello from wasm" {
			t.Errorf("host sees %q, %v; want the guest's file", b, err)
		}
	}
}

func TestHostModeUsesRealClock(t *testing.T) {
	before := time.Now()
	_, out := runGuest(t, hostOptions(t), "-sleep", "20ms")
	after := time.Now()
	got := time.Unix(0, nowFrom(t, out))
	if got.Before(before) || got.After(after) {
		t.Errorf("guest clock read %v, want between %v and %v", got, before, after)
	}
	if !strings.Contains(out, " slept=true\n") {
		t.Errorf("guest did not see its sleep pass:\n%s", out)
	}
}

func TestDeterministicRunsRepeat(t *testing.T) {
	dir := t.TempDir()
	opts := Options{
		Deterministic: true,
		Seed:          7,
		Env:           []string{"GUEST_VAR=det", "PWD=" + dir},
		Mounts:        []Mount{{HostDir: dir, GuestPath: dir}},
		CacheDir:      DefaultCacheDir(),
	}
	start := time.Now()
	_, first := runGuest(t, opts, "-sleep", "1h", "-dir", dir)
	_, second := runGuest(t, opts, "-sleep", "1h", "-dir", dir)
	if first != second {
		t.Errorf("two deterministic runs differ:\n%s\n---\n%s", first, second)
	}
	if time.Since(start) > time.Minute {
		t.Errorf("a virtual 1h sleep took %v of real time", time.Since(start))
	}
	wantLines(t, first, "read=hello from wasm err=<nil>", "env=det")
	if got := time.Unix(0, nowFrom(t, first)); got.Sub(DefaultStart) > time.Second {
		t.Errorf("deterministic clock read %v, want just after %v", got, DefaultStart)
	}
	opts.Seed = 8
	if _, other := runGuest(t, opts, "-dir", dir); randLine(other) == randLine(first) {
		t.Errorf("seeds 7 and 8 gave the same random bytes %s", randLine(first))
	}
}

func TestRunReportsBadModule(t *testing.T) {
	code, err := Run(context.Background(), []byte("not wasm"), []string{"x"}, Options{})
	if err == nil || code != -1 {
		t.Errorf("Run(garbage) = %d, %v; want -1 and an error", code, err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	// Warm the cache with the same config (a cancellable ctx compiles
	// differently) so the deadline hits the run, not the compile.
	opts := Options{CacheDir: DefaultCacheDir()}
	warm, cancelWarm := context.WithCancel(context.Background())
	defer cancelWarm()
	if _, err := Run(warm, guestWasm(t), []string{"guest.wasm"}, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	code, err := Run(ctx, guestWasm(t), []string{"guest.wasm", "-sleep", "1h"}, opts)
	if err == nil || code != -1 || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Run with cancelled ctx = %d, %v; want -1 and a 'stopped' error", code, err)
	}
	if time.Since(start) > time.Minute {
		t.Errorf("cancel took %v to stop a sleeping guest", time.Since(start))
	}
}

// nowFrom extracts the guest's clock reading in Unix nanoseconds.
func nowFrom(t *testing.T, out string) int64 {
	t.Helper()
	_, v, _ := strings.Cut(out, "now=")
	v, _, _ = strings.Cut(v, " ")
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("no clock reading in guest output: %v\n%s", err, out)
	}
	return ns
}

// randLine returns the guest's random bytes as printed.
func randLine(out string) string {
	_, after, _ := strings.Cut(out, "rand=")
	return after
}
