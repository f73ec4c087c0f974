// Package wasm runs Go programs compiled for wasip1 (GOOS=wasip1 GOARCH=wasm)
// under wazero, in-process and without cgo.
//
// It exists so that core's and fsadapter's tests, and later the simulator's
// scenarios, run unchanged as WebAssembly and can be compared with native runs
// (DESIGN.md section 3). Two modes matter:
//
//   - host mode (HostOptions): real clocks, real randomness, the host's
//     environment and its whole filesystem mounted at "/", so a `go test`
//     binary behaves as it would natively. cmd/wasmrun uses it as the
//     `go test -exec` program.
//   - deterministic mode (Options.Deterministic): a virtual clock that only
//     moves when the guest reads or sleeps on it, and a seeded random source,
//     so two runs of the same guest with the same inputs are byte-identical.
package wasm
