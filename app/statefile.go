package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/balancel4/balance-l4/fleet"
	"github.com/balancel4/balance-l4/l4"
)

// stateFileVersion guards against reading a file written by an incompatible build.
const stateFileVersion = 1

type stateFile struct {
	Version int              `json:"version"`
	State   l4.OperatorState `json:"state"`
	// Fleet is the fleet's state as last applied, with its revision, and the
	// changes made on this instance alone; absent outside a fleet.
	Fleet *fleet.Saved `json:"fleet,omitempty"`
}

// loadState reads the operator state. A missing file is not an error (first start);
// a corrupt one is, and the caller reports it and goes on without it.
func loadState(path string) (stateFile, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return stateFile{}, false, nil
	}
	if err != nil {
		return stateFile{}, false, fmt.Errorf("reading state file %s: %w", path, err)
	}
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return stateFile{}, false, fmt.Errorf("parsing state file %s: %w", path, err)
	}
	if f.Version != stateFileVersion {
		return stateFile{}, false, fmt.Errorf("parsing state file %s: version %d, want %d", path, f.Version, stateFileVersion)
	}
	return f, true, nil
}

// saveState writes the operator state atomically: a temp file in the same
// directory, fsynced, then renamed over the old one, so a crash leaves either
// the old or the new state and never half of one.
func saveState(path string, f stateFile) error {
	f.Version = stateFileVersion
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing state file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing state file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing state file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing state file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing state file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // persist the rename itself
		d.Sync()
		d.Close()
	}
	return nil
}
