// Command simulate will replay recorded traffic against the core with
// injected disk faults and crashes. It is not built yet; this placeholder
// says so, so that `go run ./simulate` never pretends to work.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "simulate: not built yet (see README.md, Status)")
	os.Exit(1)
}
