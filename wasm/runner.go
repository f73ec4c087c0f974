package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Mount exposes a host directory to the guest.
type Mount struct {
	HostDir   string // directory on the host
	GuestPath string // absolute path the guest sees it at, e.g. "/" or "/data"
	ReadOnly  bool
}

// Options configures one guest run. The zero value gives an isolated guest:
// no files, no environment, empty stdin, discarded output, and wazero's
// default fake clock and fixed random source.
type Options struct {
	Stdin  io.Reader // nil: always EOF
	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded
	Env    []string  // "KEY=VALUE" entries; later entries override earlier ones
	Mounts []Mount

	// Deterministic selects a virtual clock starting at Start (DefaultStart
	// if zero), on which sleeps return at once but advance time, and a random
	// source seeded with Seed. Otherwise the guest gets the host's real clocks,
	// real sleeps and crypto/rand.
	Deterministic bool
	Seed          uint64
	Start         time.Time

	// CacheDir holds wazero's compiled code between runs; compiling a Go test
	// binary takes seconds, loading it from the cache a fraction of that.
	// Empty means compile in memory every time.
	CacheDir string
}

// HostOptions returns the options that make a wasip1 binary behave like a
// native one on this host: the whole host filesystem mounted at "/", the
// host's environment with PWD set to the real working directory (Go's wasip1
// os.Getwd reads $PWD, and `go test -exec` does not always set it), the
// process's stdio, real clocks and randomness, and a per-user compile cache.
func HostOptions() (Options, error) {
	wd, err := os.Getwd()
	if err != nil {
		return Options{}, fmt.Errorf("finding the working directory: %w", err)
	}
	return Options{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Env:      append(os.Environ(), "PWD="+wd),
		Mounts:   []Mount{{HostDir: "/", GuestPath: "/"}},
		CacheDir: DefaultCacheDir(),
	}, nil
}

// DefaultCacheDir is where HostOptions keeps compiled code: under the user's
// cache directory, or the temp directory when there is no home (some CI).
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "bitville-apmd-wazero")
}

// Run compiles and runs a wasip1 module to completion. args is the guest's
// full argv, args[0] included. It returns the guest's exit code (0 when it
// returns from main); err is non-nil only when the guest could not be run or
// did not finish on its own (compile error, trap, ctx cancelled), and then
// exitCode is -1.
func Run(ctx context.Context, wasmBytes []byte, args []string, cfg Options) (exitCode int, err error) {
	rtc := wazero.NewRuntimeConfig().WithCloseOnContextDone(ctx.Done() != nil)
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return -1, fmt.Errorf("opening compile cache %s: %w", cfg.CacheDir, err)
		}
		defer cache.Close(context.WithoutCancel(ctx))
		rtc = rtc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rtc)
	defer rt.Close(context.WithoutCancel(ctx))
	return runIn(ctx, rt, wasmBytes, args, cfg)
}

// runIn does the work of Run inside a runtime whose lifetime Run owns.
func runIn(ctx context.Context, rt wazero.Runtime, wasmBytes []byte, args []string, cfg Options) (int, error) {
	compileCtx := experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0))
	mod, err := rt.CompileModule(compileCtx, wasmBytes)
	if err != nil {
		return -1, fmt.Errorf("compiling wasm module: %w", err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return -1, fmt.Errorf("instantiating WASI: %w", err)
	}
	_, err = rt.InstantiateModule(ctx, mod, moduleConfig(ctx, args, cfg))
	return exitStatus(ctx, err)
}

// moduleConfig translates Options into wazero's module configuration.
func moduleConfig(ctx context.Context, args []string, cfg Options) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().
		WithArgs(args...).
		WithStdin(cfg.Stdin).
		WithStdout(cfg.Stdout).
		WithStderr(cfg.Stderr).
		WithFSConfig(fsConfig(cfg.Mounts))
	for _, kv := range cfg.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue // not representable in WASI (e.g. Windows' "=C:=C:\")
		}
		mc = mc.WithEnv(k, v)
	}
	return withClocks(ctx, mc, cfg)
}

// fsConfig mounts each host directory at its guest path.
func fsConfig(mounts []Mount) wazero.FSConfig {
	fc := wazero.NewFSConfig()
	for _, m := range mounts {
		if m.ReadOnly {
			fc = fc.WithReadOnlyDirMount(m.HostDir, m.GuestPath)
		} else {
			fc = fc.WithDirMount(m.HostDir, m.GuestPath)
		}
	}
	return fc
}

// withClocks wires time and randomness: virtual and seeded when
// deterministic, the host's otherwise (so timeouts and t.TempDir work).
func withClocks(ctx context.Context, mc wazero.ModuleConfig, cfg Options) wazero.ModuleConfig {
	if !cfg.Deterministic {
		return mc.WithSysWalltime().WithSysNanotime().
			WithNanosleep(func(ns int64) { sleepCtx(ctx, ns) }).
			WithRandSource(rand.Reader)
	}
	start := cfg.Start
	if start.IsZero() {
		start = DefaultStart
	}
	c := &virtualClock{start: start}
	return mc.WithWalltime(c.walltime, resolution).
		WithNanotime(c.nanotime, resolution).
		WithNanosleep(c.nanosleep).
		WithRandSource(newSeededReader(cfg.Seed))
}

// sleepCtx is a real sleep that ends early when ctx is done. An idle Go guest
// sleeps in the host until its next timer fires; without this a cancelled run
// would stay blocked there, since wazero only checks ctx while guest code runs.
func sleepCtx(ctx context.Context, ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// exitStatus turns the result of running _start into an exit code: wazero
// reports proc_exit, including exit(0), as *sys.ExitError.
func exitStatus(ctx context.Context, err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *sys.ExitError
	if !errors.As(err, &ee) {
		return -1, fmt.Errorf("running wasm module: %w", err)
	}
	if ctx.Err() != nil {
		return -1, fmt.Errorf("wasm module stopped: %w", context.Cause(ctx))
	}
	return int(ee.ExitCode()), nil
}
