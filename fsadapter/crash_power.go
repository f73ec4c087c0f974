package fsadapter

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
)

// losePower replaces the current state by what a disk must have kept:
// every directory gets back its synced entries, so unsynced creations
// vanish, unsynced renames are undone and unsynced removals return. A file
// reachable only through unsynced entries is gone. Then every surviving
// file whose bytes were not all synced is torn (see tornData), in inode
// creation order so the PRNG draws do not depend on names or maps.
func (c *CrashFS) losePower() {
	var files []*inode
	c.root.revert(map[*inode]bool{}, &files)
	slices.SortFunc(files, func(a, b *inode) int { return cmp.Compare(a.id, b.id) })
	for _, f := range files {
		if !bytes.Equal(f.data, f.syncedData) {
			f.syncedData = tornData(f.syncedData, f.data, c.rng)
		}
		f.data = bytes.Clone(f.syncedData)
	}
}

// revert restores dir's synced entries and those of every directory below,
// collecting the files that survive. Each directory's entries survive on
// their own, so a cross-directory rename fsynced only at its destination
// leaves the file under both names, sharing one inode like a hard link. A
// directory reached a second time that way keeps only its first name, so
// the tree never holds a cycle.
func (dir *inode) revert(seen map[*inode]bool, files *[]*inode) {
	seen[dir] = true
	dir.entries = make(map[string]*inode, len(dir.syncedEntries))
	for _, name := range sortedNames(dir.syncedEntries) {
		child := dir.syncedEntries[name]
		if child.isDir && seen[child] {
			delete(dir.syncedEntries, name)
			continue
		}
		dir.entries[name] = child
		switch {
		case child.isDir:
			child.revert(seen, files)
		case !seen[child]:
			seen[child] = true
			*files = append(*files, child)
		}
	}
}

// tornData picks what a power loss leaves of a file whose pending bytes
// differ from its synced bytes. Write-back may have reached any point, so
// it draws one of these outcomes uniformly:
//
//   - the synced bytes, as if no write-back happened;
//   - the pending bytes, as if all of it happened, truncation included;
//   - a tear at cut, for every cut after the bytes both versions share:
//     pending[:cut] followed by whatever synced holds beyond cut.
//
// For the spool's case, an append after the last fsync, every outcome is
// the synced bytes plus a prefix of the appended ones.
func tornData(synced, pending []byte, rng *rand.Rand) []byte {
	shared := commonPrefix(synced, pending)
	tears := len(pending) - shared
	k := rng.IntN(tears + 2)
	switch k {
	case 0:
		return bytes.Clone(synced)
	case tears + 1:
		return bytes.Clone(pending)
	}
	cut := shared + k
	out := bytes.Clone(pending[:cut])
	if cut < len(synced) {
		out = append(out, synced[cut:]...)
	}
	return out
}

// commonPrefix returns how many leading bytes a and b share.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
