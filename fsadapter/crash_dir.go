package fsadapter

import (
	"io"
	"os"
	"syscall"
)

// Readdir lists the directory in name order. count <= 0 returns all
// remaining entries with a nil error; count > 0 returns at most count and
// io.EOF once none remain, as os.File.Readdir does.
func (f *crashFile) Readdir(count int) ([]os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("readdir"); err != nil {
		return nil, err
	}
	names, err := f.nextNames(count)
	if err != nil {
		return nil, err
	}
	infos := make([]os.FileInfo, 0, len(names))
	for _, name := range names {
		infos = append(infos, f.node.entries[name].info(name))
	}
	return infos, nil
}

// Readdirnames is Readdir returning only names.
func (f *crashFile) Readdirnames(count int) ([]string, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable("readdir"); err != nil {
		return nil, err
	}
	return f.nextNames(count)
}

// nextNames continues the listing, which is sorted when it begins and skips
// names removed since.
func (f *crashFile) nextNames(count int) ([]string, error) {
	if !f.node.isDir {
		return nil, pathErr("readdir", f.name, syscall.ENOTDIR)
	}
	if f.listing == nil {
		f.listing = sortedNames(f.node.entries)
	}
	names := []string{}
	for f.listPos < len(f.listing) && (count <= 0 || len(names) < count) {
		name := f.listing[f.listPos]
		f.listPos++
		if _, ok := f.node.entries[name]; ok {
			names = append(names, name)
		}
	}
	if count > 0 && len(names) == 0 {
		return nil, io.EOF
	}
	return names, nil
}
