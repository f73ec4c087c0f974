// Command bitville-apmd is the per-host daemon of Bitville APM: it takes
// profiling records from PHP over a Unix socket, keeps them durable in a
// spool, and forwards them in order to the central listener. All decisions
// live in package core; this is the thin shell that does the I/O.
package main

import (
	"fmt"
	"os"
)

// Exit codes (DESIGN 4.5).
const (
	exitOK            = 0
	exitNotSaved      = 1  // records could not be saved at shutdown
	exitSpoolLocked   = 73 // another daemon holds the spool (or the socket)
	exitRestart       = 75 // planned restart: systemd starts us again
	exitConfig        = 78 // configuration error
	defaultConfigFile = "config.toml"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches the subcommand and returns the exit code.
func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "run":
			return runDaemon(args[1:])
		case "inspect":
			return runInspect(args[1:], os.Stdout)
		case "requeue":
			return runRequeue(args[1:], os.Stdout)
		case "check-config":
			return runCheckConfig(args[1:], os.Stdout)
		case "version":
			fmt.Println("bitville-apmd", version)
			return exitOK
		}
	}
	return runDaemon(args)
}
