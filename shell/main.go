// Command bitville-apmd is the per-host daemon of Bitville APM.
//
// It is not built yet: the pure core it will drive is in ../core. This
// placeholder says so, so that `go run ./shell` never pretends to work.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bitville-apmd: the daemon is not built yet (see README.md, Status); the core and its tests are in place: go test ./...")
	os.Exit(1)
}
