package wasm

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitville/apmd/simulate/sim"
)

// paritySeeds are runs of the simulator that exercise framing, spills,
// crashes, recovery, the listener model and faults, yet stay quick under
// wazero.
var paritySeeds = []string{
	"recorded-traffic:1", "auth-failure:1", "poison-batch:1", "torn-segment:1",
	"bitflip-quarantine:2", "restart-storm:1", "clock-jumps:1", "random:7",
}

// The simulator's engine gives byte-identical traces natively and compiled
// to wasip1 under wazero (with a deterministic clock and random source):
// nothing in it depends on the platform, the map order or the clock.
func TestSimulatorParityNativeAndWasm(t *testing.T) {
	guest, err := buildWasip1(filepath.Join(t.TempDir(), "simguest.wasm"), "./simguest")
	if err != nil {
		t.Fatalf("building the wasip1 simulator guest: %v", err)
	}
	var out, errOut bytes.Buffer
	opts := Options{Stdout: &out, Stderr: &errOut, Deterministic: true, Seed: 1, CacheDir: DefaultCacheDir()}
	code, err := Run(context.Background(), guest, append([]string{"simguest"}, paritySeeds...), opts)
	if err != nil || code != 0 {
		t.Fatalf("guest: exit %d, %v\n%s", code, err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(paritySeeds) {
		t.Fatalf("guest printed %d lines for %d runs:\n%s", len(lines), len(paritySeeds), out.String())
	}
	for i, arg := range paritySeeds {
		name, seedText, _ := strings.Cut(arg, ":")
		var seed uint64
		fmt.Sscan(seedText, &seed)
		sc, _ := sim.Lookup(name)
		r := sim.Run(sc, seed, sim.Options{})
		native := fmt.Sprintf("%s %d %s %d", name, seed, r.Digest, r.ViolationsTotal)
		if lines[i] != native {
			t.Errorf("%s: wasm %q, native %q", arg, lines[i], native)
		}
		if r.ViolationsTotal != 0 {
			t.Errorf("%s: %d violations", arg, r.ViolationsTotal)
		}
	}
}
