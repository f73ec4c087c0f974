package fsadapter

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// inode is one file or directory of a CrashFS. It keeps two versions of its
// contents: what a reader sees now, and what was fsynced and so must
// survive a power loss.
type inode struct {
	id    uint64 // creation order, which fixes the order files are torn in
	isDir bool
	perm  fs.FileMode
	mtime time.Time

	data       []byte // file: current bytes
	syncedData []byte // file: bytes as of the last fsync; never aliases data

	entries       map[string]*inode // directory: current entries
	syncedEntries map[string]*inode // directory: entries as of the last fsync
}

// newInode allocates a file or an empty directory. A new directory has no
// synced entries, and a new file no synced bytes, until they are fsynced.
func (c *CrashFS) newInode(isDir bool, perm fs.FileMode) *inode {
	c.nextID++
	n := &inode{id: c.nextID, isDir: isDir, perm: perm & fs.ModePerm}
	if isDir {
		n.entries = map[string]*inode{}
		n.syncedEntries = map[string]*inode{}
	}
	return n
}

// splitPath cleans name and returns its components below the root, so "",
// "/" and "." all name the root, as they do for NewOS.
func splitPath(name string) []string {
	clean := path.Clean("/" + filepath.ToSlash(name))
	if clean == "/" {
		return nil
	}
	return strings.Split(clean[1:], "/")
}

// walkParts follows current entries from the root. A component that is a
// file where a directory is needed gives ENOTDIR, a missing one ENOENT.
func (c *CrashFS) walkParts(parts []string) (*inode, error) {
	n := c.root
	for _, part := range parts {
		if !n.isDir {
			return nil, syscall.ENOTDIR
		}
		child, ok := n.entries[part]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = child
	}
	return n, nil
}

// lookup returns the inode name refers to now.
func (c *CrashFS) lookup(name string) (*inode, error) {
	return c.walkParts(splitPath(name))
}

// lookupParent returns the directory that holds name's last component, and
// that component; for the root itself it returns the root and "".
func (c *CrashFS) lookupParent(name string) (*inode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return c.root, "", nil
	}
	dir, err := c.walkParts(parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if !dir.isDir {
		return nil, "", syscall.ENOTDIR
	}
	return dir, parts[len(parts)-1], nil
}

// writeAt writes p at off, filling any gap past the end with zeros as a
// sparse file reads.
func (n *inode) writeAt(p []byte, off int64) {
	if end := off + int64(len(p)); end > int64(len(n.data)) {
		n.data = append(n.data, make([]byte, end-int64(len(n.data)))...)
	}
	copy(n.data[off:], p)
}

// resize truncates or zero-extends the current bytes.
func (n *inode) resize(size int64) {
	if size <= int64(len(n.data)) {
		n.data = n.data[:size]
		return
	}
	n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
}

// sortedNames returns the keys of entries in order, so nothing observable
// depends on map iteration order.
func sortedNames(entries map[string]*inode) []string {
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// walk calls fn for every entry below n, depth first in name order, with
// the entry's path and the directory holding it.
func (n *inode) walk(prefix string, fn func(p string, parent, child *inode)) {
	for _, name := range sortedNames(n.entries) {
		child := n.entries[name]
		p := prefix + "/" + name
		fn(p, n, child)
		if child.isDir {
			child.walk(p, fn)
		}
	}
}

// describe renders one Dump line.
func describe(p string, parent, n *inode) string {
	line := fmt.Sprintf("%s %d bytes", p, len(n.data))
	if n.isDir {
		line = p + "/"
	}
	if parent.syncedEntries[path.Base(p)] != n {
		line += ", entry unsynced"
	}
	if n.isDir && !sameEntries(n.entries, n.syncedEntries) {
		line += ", entries unsynced"
	}
	if !n.isDir && !bytes.Equal(n.data, n.syncedData) {
		line += fmt.Sprintf(", %d bytes synced", len(n.syncedData))
	}
	return line
}

// sameEntries reports whether two directory versions hold the same names
// for the same inodes.
func sameEntries(a, b map[string]*inode) bool {
	if len(a) != len(b) {
		return false
	}
	for name, n := range a {
		if b[name] != n {
			return false
		}
	}
	return true
}

// info describes n under the given name, as Stat does.
func (n *inode) info(name string) fs.FileInfo {
	mode := n.perm
	if n.isDir {
		mode |= fs.ModeDir
	}
	return fileInfo{name: name, size: int64(len(n.data)), mode: mode, mtime: n.mtime}
}

// fileInfo is the fs.FileInfo of a CrashFS inode at the time of the call.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }
