// Command guest is a tiny wasip1 program the wasm package's tests run under
// the runner to check that args, environment, files, clocks, randomness and
// exit codes pass through. It is under testdata so `go build ./...` skips it.
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	exit := flag.Int("exit", 0, "exit code")
	dir := flag.String("dir", "", "directory to write and read a file in")
	sleep := flag.Duration("sleep", 0, "time to sleep before reading the clock again")
	flag.Parse()

	fmt.Printf("args=%q\n", os.Args[1:])
	fmt.Printf("env=%s\n", os.Getenv("GUEST_VAR"))
	wd, err := os.Getwd()
	fmt.Printf("wd=%s err=%v\n", wd, err)
	if *dir != "" {
		fileRoundTrip(*dir)
	}
	clockAndRand(*sleep)
	os.Exit(*exit)
}

// fileRoundTrip writes a file, reads it back, and fsyncs the directory the
// way core does (Open then Sync), reporting each outcome.
func fileRoundTrip(dir string) {
	name := filepath.Join(dir, "hello.txt")
	err := os.WriteFile(name, []byte("hello from wasm"), 0o644)
	fmt.Printf("write err=%v\n", err)
	b, err := os.ReadFile(name)
	fmt.Printf("read=%s err=%v\n", b, err)
	d, err := os.Open(dir)
	if err != nil {
		fmt.Printf("dirsync open err=%v\n", err)
		return
	}
	fmt.Printf("dirsync err=%v\n", d.Sync())
	d.Close()
}

// clockAndRand prints readings that must repeat exactly in deterministic mode.
func clockAndRand(sleep time.Duration) {
	start := time.Now()
	time.Sleep(sleep)
	fmt.Printf("now=%d slept=%t\n", start.UnixNano(), time.Since(start) >= sleep)
	b := make([]byte, 8)
	rand.Read(b)
	fmt.Printf("rand=%x\n", b)
}
