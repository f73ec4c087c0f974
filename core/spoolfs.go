package core

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/spf13/afero"
)

// File names in the spool directory. Segments are named by the first
// sequence number they were written with, zero-padded so that name order is
// sequence order.
const (
	metaName       = "spool.meta"
	lockName       = "spool.lock"
	segSuffix      = ".seg"
	tmpSuffix      = ".tmp"
	damagedSuffix  = ".damaged"
	deadSuffix     = ".dl"
	quarantineDir  = "quarantine"
	deadLetterDir  = "dead-letter"
	dirMode        = 0o700
	seqDigits      = 20
	maxMetaBytes   = 4096
	headerReadSize = segmentHeaderSize
)

func segName(seq uint64) string { return fmt.Sprintf("%0*d%s", seqDigits, seq, segSuffix) }

// parseSeqName returns the sequence number a name starts with, if the name is
// exactly digits followed by suffix.
func parseSeqName(name, suffix string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != seqDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// syncDir makes a directory's entries durable: the one way every afero
// filesystem supports (DESIGN 3).
func syncDir(fsys afero.Fs, dir string) error {
	f, err := fsys.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for fsync: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// writeDurable writes data under tmp, fsyncs and closes it, renames it to
// final and, unless skipDirSync, fsyncs the directory. On failure the temp
// file is removed (best effort) and final is untouched.
func writeDurable(fsys afero.Fs, dir, tmp, final string, data []byte, skipDirSync bool) error {
	tmpPath, finalPath := path.Join(dir, tmp), path.Join(dir, final)
	if err := writeSynced(fsys, tmpPath, data); err != nil {
		_ = fsys.Remove(tmpPath)
		return err
	}
	if err := fsys.Rename(tmpPath, finalPath); err != nil {
		_ = fsys.Remove(tmpPath)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if skipDirSync {
		return nil
	}
	return syncDir(fsys, dir)
}

func writeSynced(fsys afero.Fs, name string, data []byte) error {
	// Create, not OpenFile: open flags differ by platform and core may not
	// import os. File modes are the shell's business (it sets the umask).
	f, err := fsys.Create(name)
	if err != nil {
		return fmt.Errorf("create %s: %w", path.Base(name), err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path.Base(name), err)
	}
	return nil
}

// removeDurable removes a file and fsyncs its directory.
func removeDurable(fsys afero.Fs, dir, name string) error {
	if err := fsys.Remove(path.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return syncDir(fsys, dir)
}

// moveDurable renames a file into another directory and fsyncs both.
func moveDurable(fsys afero.Fs, fromDir, name, toDir, newName string) error {
	if err := fsys.Rename(path.Join(fromDir, name), path.Join(toDir, newName)); err != nil {
		return fmt.Errorf("move %s to %s: %w", name, toDir, err)
	}
	if err := syncDir(fsys, toDir); err != nil {
		return err
	}
	return syncDir(fsys, fromDir)
}

// ensureDir creates dir if missing and makes its entry durable in its parent.
func ensureDir(fsys afero.Fs, dir string) error {
	if fi, err := fsys.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if err := fsys.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return syncDir(fsys, path.Dir(dir))
}

// readFileLimited reads at most limit bytes of a file.
func readFileLimited(fsys afero.Fs, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := min(fi.Size(), limit)
	buf := make([]byte, size)
	n, err := io.ReadFull(f, buf)
	return buf[:n], err
}
