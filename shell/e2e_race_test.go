//go:build race

package main

// e2eRace builds the daemon with -race too when the tests run with -race.
const e2eRace = true
