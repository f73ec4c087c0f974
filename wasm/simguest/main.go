// Command simguest runs simulator scenarios and prints each run's trace
// digest. It is built for wasip1 and run under wazero by the parity test
// in package wasm, which runs the same seeds natively and compares: the
// engine must give byte-identical traces in both.
//
// Usage: simguest [-v] SCENARIO:SEED ...
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/bitville/apmd/simulate/sim"
)

func main() {
	args, opts := os.Args[1:], sim.Options{}
	if len(args) > 0 && args[0] == "-v" { // the step trace, to find where two runs part
		args, opts.Trace = args[1:], os.Stdout
	}
	for _, arg := range args {
		name, seedText, ok := strings.Cut(arg, ":")
		seed, err := strconv.ParseUint(seedText, 10, 64)
		sc, found := sim.Lookup(name)
		if !ok || err != nil || !found {
			fmt.Fprintf(os.Stderr, "simguest: %q is not SCENARIO:SEED with a known scenario\n", arg)
			os.Exit(2)
		}
		r := sim.Run(sc, seed, opts)
		fmt.Printf("%s %d %s %d\n", name, seed, r.Digest, r.ViolationsTotal)
	}
}
