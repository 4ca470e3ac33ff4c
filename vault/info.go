package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
)

// Info describes an open vault. It holds no secret.
//
// The zero value describes no vault: Vault.Info and Inspect fill it in.
type Info struct {
	ID            string   // the vault id, 32 hex digits
	FormatVersion int      // the header's format version
	Generations   []uint32 // live key generations, oldest first
	Current       uint32   // the generation new seals use
	Rotating      bool     // more than one generation: a RotateKey has not finished
	Slots         []SlotInfo
	UnlockedBy    SlotID // the slot that opened this Vault
	// KeysLocked reports whether every key the Vault holds is in locked
	// memory (not swappable); LockErr says why not when it is false.
	KeysLocked bool
	LockErr    error
	// PurgeErr is the failure of the last purge this Vault ran (see
	// Vault.Purge), matching ErrPurgePending: the backend may still
	// keep a copy that a retired credential or a dropped key
	// generation opens. Nil when the last purge finished.
	PurgeErr error
}

// SlotInfo describes one key slot.
//
// The zero value describes no slot.
type SlotInfo struct {
	ID      SlotID
	Kind    SlotKind
	KDF     kdf.Params // passphrase slots: the argon2id parameters
	Account string     // keychain slots: the key store account
	// Service is, for keychain slots, the service name of the key store
	// that holds the key, as the slot records it (header version 3; see
	// ServiceNamer), or "" when the slot records none (a slot made by a
	// key store that names no service, or before version 3).
	Service string
	// Sealed is, for TPM slots, the sealed key as the KEKSealer made it
	// (package tpm's Describe reads it). It is not secret: only the
	// device it was sealed to can unseal it.
	Sealed []byte
}

// Info describes the vault as of the header this Vault last read. It works
// after Close too (KeysLocked is then false).
func (v *Vault) Info() Info {
	v.mu.RLock()
	defer v.mu.RUnlock()
	h := v.hdr
	in := Info{
		ID:            hex.EncodeToString(h.id[:]),
		FormatVersion: int(h.version()),
		Generations:   append([]uint32(nil), h.gens...),
		Current:       h.current(),
		Rotating:      len(h.gens) > 1,
		UnlockedBy:    v.unlockedBy,
		KeysLocked:    !v.closed,
		PurgeErr:      v.purgeErr,
	}
	for _, s := range h.slots {
		in.Slots = append(in.Slots, slotInfo(h, &s))
	}
	var bufs []*secmem.Buffer
	for _, g := range v.gens {
		bufs = append(bufs, g.key)
	}
	for _, k := range v.keks {
		bufs = append(bufs, k)
	}
	for _, b := range bufs {
		if !b.Locked() {
			in.KeysLocked = false
			if in.LockErr == nil {
				in.LockErr = b.LockErr()
			}
		}
	}
	return in
}

// Recover repairs the session called name from the backend's previous
// generation of its blob (backends.Recoverer), if its current blob does
// not open (damaged, tampered with, missing generation) and the previous
// one does. It returns whether it restored anything: false with a nil
// error means the current blob opens and nothing was changed. A backend
// that keeps no previous generations gives an error matching
// errors.ErrUnsupported; no previous generation, one matching ErrNotFound.
func (v *Vault) Recover(ctx context.Context, name string) (restored bool, err error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	if err := v.checkOpen(); err != nil {
		return false, err
	}
	rec, ok := v.backend.(backends.Recoverer)
	if !ok {
		return false, fmt.Errorf("vault: recover %q: the backend keeps no previous generations: %w", name, errors.ErrUnsupported)
	}
	blob, ver, err := v.backend.Get(ctx, name)
	switch {
	case err == nil:
		plain, err := v.OpenSession(ctx, name, blob)
		if err == nil {
			secmem.Wipe(plain)
			return false, nil
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrTooLarge) {
			return false, err
		}
	case errors.Is(err, backends.ErrNotFound):
		ver = backends.Any
	default:
		return false, fmt.Errorf("vault: recover %q: read: %w", name, err)
	}
	prev, _, err := rec.Previous(ctx, name)
	if err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return false, notFound(fmt.Sprintf("a previous generation of session %q", name), err)
		}
		return false, fmt.Errorf("vault: recover %q: read previous generation: %w", name, err)
	}
	plain, err := v.openSession(ctx, name, prev, false)
	if err != nil {
		return false, fmt.Errorf("vault: recover %q: the previous generation does not open either: %w", name, err)
	}
	secmem.Wipe(plain)
	var counter uint64
	if env, err := parseEnvelope(name, prev); err == nil {
		counter = env.counter
	}
	if _, err := rec.Restore(ctx, name, ver); err != nil {
		return false, fmt.Errorf("vault: recover %q: restore: %w", name, err)
	}
	// A deliberate rollback: the restored blob is the newest from now on.
	return true, v.noteRestored(name, counter)
}
