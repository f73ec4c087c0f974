package core

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/spf13/afero"
)

// metaVersion is the spool.meta format this build writes and reads.
const metaVersion = 1

// meta is spool.meta: who this spool is and which sequence numbers it may
// hand out. It is replaced atomically (temp, fsync, rename, directory fsync).
type meta struct {
	Version int    `json:"version"`
	AgentID string `json:"agent_id"`
	// ReservedThrough is the highest sequence number that may be handed
	// out. A number reaches a segment or Next only once a meta with a
	// ReservedThrough at or above it is durable, so numbers never repeat
	// across crashes, even after the spool has emptied.
	ReservedThrough uint64 `json:"reserved_through"`
	// AckedThrough is a lower bound on what the listener has acknowledged,
	// kept only to count redeliveries after a restart.
	AckedThrough uint64 `json:"acked_through"`
}

// errMetaMissing says the spool has no spool.meta yet.
var errMetaMissing = errors.New("spool.meta missing")

// readMeta reads spool.meta. An unknown version is an UnknownVersionError;
// an unreadable or inconsistent file is some other error.
func readMeta(fsys afero.Fs, dir string) (meta, error) {
	data, err := readFileLimited(fsys, path.Join(dir, metaName), maxMetaBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return meta{}, errMetaMissing
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return meta{}, fmt.Errorf("read %s: %w", metaName, err)
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return meta{}, fmt.Errorf("parse %s: %w", metaName, err)
	}
	if m.Version != metaVersion {
		return meta{}, &UnknownVersionError{File: metaName, Version: m.Version}
	}
	if _, err := hex.DecodeString(m.AgentID); err != nil || len(m.AgentID) != 32 {
		return meta{}, fmt.Errorf("parse %s: agent_id %q is not 32 hex digits", metaName, m.AgentID)
	}
	return m, nil
}

func writeMeta(fsys afero.Fs, dir string, m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", metaName, err)
	}
	data = append(data, '\n')
	if err := writeDurable(fsys, dir, metaName+tmpSuffix, metaName, data, false); err != nil {
		return fmt.Errorf("replace %s: %w", metaName, err)
	}
	return nil
}

// newAgentID draws 16 bytes from the host's entropy source.
func newAgentID(entropy io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(entropy, b[:]); err != nil {
		return "", fmt.Errorf("draw agent ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
