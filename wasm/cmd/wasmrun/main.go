// Command wasmrun runs a wasip1 binary under wazero as if it were a native
// program on this host. It is meant for `go test -exec`:
//
//	go build -o /tmp/wasmrun ./wasm/cmd/wasmrun
//	GOOS=wasip1 GOARCH=wasm go test -exec /tmp/wasmrun ./core/... ./fsadapter/...
//
// The host filesystem is mounted at "/", the environment is inherited (PWD is
// set to the working directory), clocks and randomness are real, and compiled
// code is cached under the user cache directory so re-runs start quickly.
// wasmrun exits with the guest's exit code, or 2 if it could not run the guest.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bitville/apmd/wasm"
)

func main() {
	os.Exit(run(os.Args))
}

// run is main without os.Exit, so deferred cleanup in wasm.Run happens first.
func run(argv []string) int {
	if len(argv) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wasmrun file.wasm [args...]\n"+
			"  e.g. GOOS=wasip1 GOARCH=wasm go test -exec wasmrun ./core/...")
		return 2
	}
	bin, err := os.ReadFile(argv[1])
	if err != nil {
		return fail(err, "check the path; it should be a GOOS=wasip1 GOARCH=wasm binary")
	}
	opts, err := wasm.HostOptions()
	if err != nil {
		return fail(err, "run wasmrun from an existing directory")
	}
	code, err := wasm.Run(context.Background(), bin, argv[1:], opts)
	if err != nil {
		return fail(err, "a compile error means the file is not a GOOS=wasip1 GOARCH=wasm "+
			"binary or the cache is damaged (delete "+opts.CacheDir+" and retry); "+
			"anything else means the guest crashed (see its output above)")
	}
	return code
}

// fail reports a failure of wasmrun itself, as opposed to the guest's own
// non-zero exit, with a hint about what to do.
func fail(err error, hint string) int {
	fmt.Fprintf(os.Stderr, "wasmrun: %v\nwasmrun: %s\n", err, hint)
	return 2
}
