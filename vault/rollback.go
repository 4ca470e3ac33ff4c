package vault

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Rollback detection.
//
// Every session sealed by this version is an envelope of version 2 (or
// 3, chunked, above chunkedThreshold), which carries a rollback counter
// bound into the AEAD's additional data: a writer seals with a counter
// above every counter it has seen for that name (and at least the wall
// clock in nanoseconds, so that writers that never read the session still
// count upwards). A Vault remembers, per name, the lowest counter it
// still accepts (its floor): the counter of the newest blob it opened or
// wrote, one more than that of a session it deleted. A blob below the
// floor is refused with ErrRollback: an older blob put back (the previous
// generation, a copy, a deleted session resurrected). A version 1
// envelope has counter 0.
//
// The header has no counter (format v1), but its generation numbers only
// grow: a header whose current generation is below the highest one a
// Vault has seen is refused with ErrRollback.
//
// A Vault's floors live as long as the Vault. WithFreshnessFile keeps
// them, and the highest generation, in a file outside the vault, so that
// a restarted process detects a rollback too. What nothing detects
// without that file is said in SECURITY.md: a whole vault replaced by an
// older copy of itself, and a header change that keeps the generation (a
// passphrase change, a slot) undone by putting the older header back.

// envelopeVersion is the version of the single-message envelopes this
// package writes; a plaintext above chunkedThreshold is sealed in chunks
// as version 3 (chunked.go), which has the same counter.
const envelopeVersion = 2

// envelopeHeaderLen is the length of the authenticated envelope header of
// version v, or 0 for a version this package does not read.
func envelopeHeaderLen(v uint16) int {
	switch v {
	case 1:
		return envelopeHeaderSize
	case 2:
		return envelopeV2HeaderSize
	case chunkVersion:
		return envelopeV3HeaderSize
	}
	return 0
}

// envelopeCounter returns the rollback counter of an envelope of version
// v whose header is at least envelopeHeaderLen(v) bytes.
func envelopeCounter(v uint16, blob []byte) uint64 {
	if v < 2 {
		return 0
	}
	return binary.BigEndian.Uint64(blob[magicSize+versionSize+genSize:])
}

// ErrRollback: a blob or header is older than one this Vault (or its
// freshness file) has already seen: a previous generation or an older
// copy put back in place, or a deleted session brought back. Never
// returned for damage (ErrCorrupt) or a wrong key.
var ErrRollback error = &sentinel{msg: "vault: rolled back to an older state"}

// RollbackError reports a rollback. It matches ErrRollback.
//
// A zero RollbackError is not a meaningful error: the package makes them.
type RollbackError struct {
	Structure string // "session" or "header"
	Name      string // the session name
	Got, Want uint64 // the counter (or generation) found, and the lowest accepted
}

func (e *RollbackError) Error() string {
	if e.Structure == "header" {
		return fmt.Sprintf("vault: rolled back to an older state: header: current key generation %d, but generation %d was seen: an older header was put back", e.Got, e.Want)
	}
	return fmt.Sprintf("vault: rolled back to an older state: session %q: counter %d, but nothing below %d is accepted: an older blob was put back (or a deleted session brought back)", e.Name, e.Got, e.Want)
}

// Unwrap returns ErrRollback.
func (e *RollbackError) Unwrap() error { return ErrRollback }

// WithFreshnessFile makes Open and Create keep the rollback floors (see
// ErrRollback) in the file at path, outside the vault, so that a
// restarted process refuses a blob older than one any earlier Vault with
// the same file saw. Open refuses a vault whose header generation is
// below the recorded one, or whose id is not the recorded one. A missing
// file is created (mode 0600) on first use.
//
// The file must be somewhere an attacker who can write the vault cannot
// (another disk, another machine's mount, a path only this user writes):
// whoever can replace it can replace it with an older copy too. Each
// change of a floor rewrites it atomically (temp file, fsync, rename,
// folder fsync), which costs about one more durable write per session
// save. Processes sharing a file merge their floors by maximum, so a
// lost race only lowers a floor (less detection), never raises one
// (a false alarm).
func WithFreshnessFile(path string) Option {
	return func(c *config) { c.freshness = path }
}

// rollbackState is a Vault's rollback floors. It has its own lock, taken
// after v.mu where both are held.
type rollbackState struct {
	mu     sync.Mutex
	floors map[string]uint64 // name -> lowest accepted counter
	maxGen uint32            // highest current generation seen
	file   string            // the freshness file, or ""
	id     string            // the vault id, hex
}

// freshRecord is the freshness file's content.
type freshRecord struct {
	Format     string            `json:"format"`
	Vault      string            `json:"vault"`
	Generation uint32            `json:"generation"`
	Sessions   map[string]uint64 `json:"sessions"`
}

const freshFormat = "sessionvault freshness v1"

// loadFresh reads the freshness file, or returns an empty record if it
// does not exist.
func loadFresh(path string) (*freshRecord, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &freshRecord{Format: freshFormat, Sessions: map[string]uint64{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: freshness file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxFreshSize {
		return nil, fmt.Errorf("%w: freshness file %s is over its limit of %d bytes", ErrCorrupt, path, maxFreshSize)
	}
	// Read at most one byte past the limit even so: a file that grows, or
	// a device put in its place, costs no more than the limit.
	b, err := io.ReadAll(io.LimitReader(f, maxFreshSize+1))
	if err != nil {
		return nil, fmt.Errorf("vault: freshness file: %w", err)
	}
	if len(b) > maxFreshSize {
		return nil, fmt.Errorf("%w: freshness file %s is over its limit of %d bytes", ErrCorrupt, path, maxFreshSize)
	}
	var r freshRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Format != freshFormat {
		return nil, fmt.Errorf("%w: freshness file %s is not a sessionvault freshness record", ErrCorrupt, path)
	}
	if r.Sessions == nil {
		r.Sessions = map[string]uint64{}
	}
	return &r, nil
}

// initRollback sets up v's rollback state after its header was unlocked:
// from the freshness file c.freshness, if any. It fails with ErrRollback
// if the file records a higher generation or another vault.
func (v *Vault) initRollback(path string) error {
	v.mu.RLock()
	id, gen := hex.EncodeToString(v.hdr.id[:]), v.hdr.current()
	v.mu.RUnlock()
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.floors, rb.id, rb.file = map[string]uint64{}, id, path
	rb.maxGen = max(rb.maxGen, gen)
	if path == "" {
		return nil
	}
	r, err := loadFresh(path)
	if err != nil {
		return err
	}
	if r.Vault != "" && r.Vault != id {
		return fmt.Errorf("%w: the freshness file %s records vault %s, not this vault (%s): the vault was replaced, or the file belongs to another vault", ErrRollback, path, r.Vault, id)
	}
	if r.Generation > gen {
		return &RollbackError{Structure: "header", Got: uint64(gen), Want: uint64(r.Generation)}
	}
	for n, c := range r.Sessions {
		rb.floors[n] = c
	}
	return rb.saveLocked(nil)
}

// saveLocked writes the freshness file, merged by maximum with what it
// holds now, except for the names in lowered, whose floor this Vault
// lowered on purpose (Recover). rb.mu is held.
func (rb *rollbackState) saveLocked(lowered map[string]bool) error {
	if rb.file == "" {
		return nil
	}
	r, err := loadFresh(rb.file)
	if err != nil {
		return err
	}
	r.Format, r.Vault = freshFormat, rb.id
	r.Generation = max(r.Generation, rb.maxGen)
	for n, c := range rb.floors {
		if lowered[n] || c > r.Sessions[n] {
			r.Sessions[n] = c
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	dir := filepath.Dir(rb.file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(rb.file)+".tmp-")
	if err != nil {
		return fmt.Errorf("vault: freshness file: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), rb.file)
	}
	if err == nil && runtime.GOOS != "windows" { // Windows cannot sync a folder handle
		// The rename is durable only once the folder is synced.
		var d *os.File
		if d, err = os.Open(dir); err == nil {
			err = d.Sync()
			if cerr := d.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("vault: freshness file: %w", err)
	}
	return nil
}

// checkFresh refuses env for name if its counter is below the floor, and
// raises the floor to it otherwise.
func (v *Vault) checkFresh(name string, env envelope) error {
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	floor := rb.floors[name]
	if env.counter < floor {
		return &RollbackError{Structure: "session", Name: name, Got: env.counter, Want: floor}
	}
	if env.counter > floor || !rb.known(name) {
		rb.setFloor(name, env.counter)
		return rb.saveLocked(nil)
	}
	return nil
}

func (rb *rollbackState) known(name string) bool {
	_, ok := rb.floors[name]
	return ok
}

func (rb *rollbackState) setFloor(name string, c uint64) {
	if rb.floors == nil {
		rb.floors = map[string]uint64{}
	}
	rb.floors[name] = c
}

// nextCounter returns the counter for a new seal of name: above the
// floor, and at least the wall clock in nanoseconds.
func (v *Vault) nextCounter(name string) uint64 {
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return max(rb.floors[name]+1, uint64(time.Now().UnixNano()))
}

// noteWritten raises name's floor to the counter of a blob this Vault
// stored.
func (v *Vault) noteWritten(name string, counter uint64) error {
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if counter > rb.floors[name] || !rb.known(name) {
		rb.setFloor(name, counter)
		return rb.saveLocked(nil)
	}
	return nil
}

// noteDeleted sets name's floor above the counter of the blob this Vault
// deleted, so that the blob cannot come back.
func (v *Vault) noteDeleted(name string, counter uint64) error {
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.setFloor(name, max(rb.floors[name], counter+1))
	return rb.saveLocked(nil)
}

// noteRestored lowers name's floor to the counter of the blob Recover
// restored on purpose.
func (v *Vault) noteRestored(name string, counter uint64) error {
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.setFloor(name, counter)
	return rb.saveLocked(map[string]bool{name: true})
}

// checkGeneration refuses a header whose current generation is below the
// highest one seen, and raises that otherwise.
func (v *Vault) checkGeneration(cur uint32) error {
	rb := &v.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if cur < rb.maxGen {
		return &RollbackError{Structure: "header", Got: uint64(cur), Want: uint64(rb.maxGen)}
	}
	if cur > rb.maxGen {
		rb.maxGen = cur
		return rb.saveLocked(nil)
	}
	return nil
}
