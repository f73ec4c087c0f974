// Package fsadapter provides the afero filesystems the daemon, the simulator
// and the wasm host run on.
//
//   - NewOS is the real filesystem, rooted at the spool's parent directory.
//   - CrashFS is an in-memory POSIX-like filesystem that remembers what was
//     fsynced, so a simulated power loss keeps exactly what a real disk would
//     be obliged to keep, and tears the rest.
//   - FaultFS wraps any of them, numbers every operation and fails the ones
//     its rules pick, so tests can enumerate every point where a disk can
//     fail or a process can die.
//
// All of them fsync a directory the one way every afero filesystem supports:
// Open the directory, then call Sync on that handle. No other interface is
// looked up by type assertion, because a wrapper such as FaultFS would hide
// it and the fsync would silently vanish.
//
// The conformance suite in this package's tests runs against every
// filesystem here, so core can rely on real-filesystem behaviour (ENOENT when
// a parent directory is missing, atomic rename over a file, directory sync)
// whichever one it is given. afero's MemMapFs differs on several of these,
// which is why CrashFS exists.
package fsadapter
