package fsadapter

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/afero"
)

// OpKind classifies an operation for FaultFS rules and observers.
type OpKind int

// One call on the afero API is one operation: MkdirAll and RemoveAll count
// once however many directories they touch. Name() is not counted.
const (
	OpAny      OpKind = iota // in a Rule: any kind
	OpOpen                   // Open, OpenFile, Create
	OpRead                   // Read, ReadAt
	OpWrite                  // Write, WriteAt, WriteString
	OpSeek                   // Seek
	OpSync                   // Sync, on files and directories
	OpClose                  // Close
	OpStat                   // Stat, on the filesystem and on handles
	OpReaddir                // Readdir, Readdirnames
	OpTruncate               // Truncate on a handle
	OpMkdir                  // Mkdir, MkdirAll
	OpRemove                 // Remove, RemoveAll
	OpRename                 // Rename
	OpChmod                  // Chmod, Chown, Chtimes
)

var opKindNames = [...]string{"any", "open", "read", "write", "seek", "sync",
	"close", "stat", "readdir", "truncate", "mkdir", "remove", "rename", "chmod"}

// String names the kind, as used in error messages and traces.
func (k OpKind) String() string {
	if k >= 0 && int(k) < len(opKindNames) {
		return opKindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Rule picks operations to fail. Every condition that is set must hold;
// the zero value of a field means "any". Operations are numbered from 1 in
// the order they reach the FaultFS, so the last one's number is Ops().
type Rule struct {
	At   int    // only operation number At
	From int    // operation number From and every later one: a process dead at op From
	Kind OpKind // only operations of this kind
	Path string // only operations whose path contains Path (either path, for Rename)

	// Times is how often the rule fires before it retires; 0 is forever.
	Times int
	// Err is the error returned, wrapped in *os.PathError (*os.LinkError
	// for Rename) as the os package wraps errno values; nil means
	// syscall.EIO. Use syscall.ENOSPC for a full disk or io.ErrShortWrite.
	Err error
	// ShortWrite, for a write, is how many bytes reach the inner file
	// before the error; it is capped at len(p)-1 so the write is always
	// short. 0 writes nothing.
	ShortWrite int
}

func (r *Rule) matches(index int, kind OpKind, paths []string) bool {
	switch {
	case r.At != 0 && index != r.At,
		r.From != 0 && index < r.From,
		r.Kind != OpAny && kind != r.Kind:
		return false
	case r.Path == "":
		return true
	}
	for _, p := range paths {
		if strings.Contains(p, r.Path) {
			return true
		}
	}
	return false
}

func (r *Rule) err() error {
	if r.Err == nil {
		return syscall.EIO
	}
	return r.Err
}

// armedRule is a Rule with the number of times it has fired.
type armedRule struct {
	Rule
	fired int
}

// FaultFS wraps an afero.Fs, numbers every operation on it and on the
// handles it returns, and fails the operations its rules pick. An operation
// that fails this way does nothing to the inner filesystem, except a short
// write, which writes part of the buffer, and Close, which still closes the
// inner handle, as the kernel frees a descriptor even when close reports
// an error.
//
// It is deterministic: what fails depends only on the sequence of
// operations. It is safe for concurrent use; a mutex guards the counter and
// the rules.
type FaultFS struct {
	// OnOp, if set, is called before each operation runs with its number,
	// kind and path ("old -> new" for Rename), whether or not it will fail.
	// It is called without the lock held, so it may call Ops or AddRule.
	OnOp func(index int, kind OpKind, path string)

	inner afero.Fs
	mu    sync.Mutex
	ops   int
	rules []*armedRule
}

// NewFaultFS wraps inner with no rules: every operation passes through.
func NewFaultFS(inner afero.Fs) *FaultFS {
	return &FaultFS{inner: inner}
}

// AddRule arms r after the rules already armed; the first rule that matches
// an operation fires. Negative fields are a programming error.
func (f *FaultFS) AddRule(r Rule) {
	if r.At < 0 || r.From < 0 || r.Times < 0 || r.ShortWrite < 0 {
		panic(fmt.Sprintf("fsadapter: invalid fault rule %+v", r))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &armedRule{Rule: r})
}

// ClearRules disarms every rule; the operation count keeps running.
func (f *FaultFS) ClearRules() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Ops returns how many operations have been counted so far.
func (f *FaultFS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// op counts one operation and returns the rule it trips, if any.
func (f *FaultFS) op(kind OpKind, paths ...string) (Rule, bool) {
	f.mu.Lock()
	f.ops++
	index := f.ops
	fired, ok := f.trip(index, kind, paths)
	f.mu.Unlock()
	if f.OnOp != nil {
		f.OnOp(index, kind, strings.Join(paths, " -> "))
	}
	return fired, ok
}

func (f *FaultFS) trip(index int, kind OpKind, paths []string) (Rule, bool) {
	for _, r := range f.rules {
		if r.Times != 0 && r.fired >= r.Times {
			continue
		}
		if r.matches(index, kind, paths) {
			r.fired++
			return r.Rule, true
		}
	}
	return Rule{}, false
}

// fail is the error an operation named op on path returns when r fires.
func fail(r Rule, op, path string) error {
	return &os.PathError{Op: op, Path: path, Err: r.err()}
}
