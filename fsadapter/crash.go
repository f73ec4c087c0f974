package fsadapter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
)

// ErrCrashed is returned, wrapped in an *os.PathError, by every use of a
// file handle opened before a Crash: a real process cannot keep a
// descriptor across its own death, so neither can the model.
var ErrCrashed = errors.New("fsadapter: file handle opened before a crash")

// CrashKind says what a Crash destroys.
type CrashKind int

const (
	// ProcessKill ends the process but not the machine: everything written
	// survives, synced or not, because it sits in the kernel's page cache.
	ProcessKill CrashKind = iota + 1
	// PowerLoss ends the machine: only fsynced data and fsynced directory
	// entries are guaranteed; other data is lost or torn.
	PowerLoss
)

// String names the kind for test output.
func (k CrashKind) String() string {
	switch k {
	case ProcessKill:
		return "ProcessKill"
	case PowerLoss:
		return "PowerLoss"
	}
	return fmt.Sprintf("CrashKind(%d)", int(k))
}

// CrashFS is an in-memory afero.Fs that behaves like a POSIX filesystem and
// remembers, per file, the bytes as of the last fsync and, per directory,
// the entries as of the last fsync of that directory. Crash(PowerLoss)
// rolls back to that state, so a test can check that a write protocol
// survives a power cut at any point (the model follows Pebble's strict
// MemFS).
//
// It is deterministic: it never reads the clock (modification times stay
// at the zero time until Chtimes sets them), listings are sorted by name,
// and a power loss tears files in inode-creation order with a PRNG seeded
// at construction. The same seed and the same operations give the same
// surviving bytes.
//
// It is safe for concurrent use: one mutex serializes every call, including
// calls on its file handles. Permissions are stored but never enforced.
type CrashFS struct {
	mu     sync.Mutex
	root   *inode
	nextID uint64
	epoch  int // bumped by Crash; handles from an older epoch fail
	rng    *rand.Rand
}

// NewCrashFS returns an empty CrashFS whose root directory "/" exists and is
// synced. seed drives the tearing of unsynced data on PowerLoss.
func NewCrashFS(seed int64) *CrashFS {
	c := &CrashFS{rng: rand.New(rand.NewPCG(uint64(seed), 0x6170_6d64))}
	c.root = c.newInode(true, 0o755)
	return c
}

// Crash simulates a crash of the given kind. Afterwards the filesystem holds
// the surviving state and is usable again, while every handle opened before
// the crash fails with ErrCrashed.
func (c *CrashFS) Crash(kind CrashKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch kind {
	case ProcessKill:
	case PowerLoss:
		c.losePower()
	default:
		panic(fmt.Sprintf("fsadapter: unknown crash kind %d", int(kind)))
	}
	c.epoch++
}

// Files lists the paths of all regular files as a reader sees them now,
// sorted, so tests can compare whole trees.
func (c *CrashFS) Files() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var files []string
	c.root.walk("", func(p string, _ *inode, n *inode) {
		if !n.isDir {
			files = append(files, p)
		}
	})
	return files
}

// Dump describes the tree, one line per entry in sorted order, marking data
// and entries that a power loss could still lose, so a failing simulation
// can print what the disk held.
func (c *CrashFS) Dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	c.root.walk("", func(p string, parent *inode, n *inode) {
		b.WriteString(describe(p, parent, n))
		b.WriteByte('\n')
	})
	return b.String()
}
