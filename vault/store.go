package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Store keeps one session of a Vault, sealed, under one name. It
// implements session.Store. Get one from (*Vault).Store.
//
// The zero value is not usable: call Vault.Store.
type Store struct {
	v    *Vault
	name string
}

// Store returns the Store for the session called name. The name is
// checked (backends.ValidateName; the header's name is refused) by every
// method, which then fails with an error matching backends.ErrInvalidName.
func (v *Vault) Store(name string) *Store { return &Store{v: v, name: name} }

// Name returns the session's name.
func (s *Store) Name() string { return s.name }

// checkName refuses names that cannot name a session.
func checkName(name string) error {
	if name == backends.HeaderName {
		return &backends.NameError{Name: name, Reason: "reserved for the vault header"}
	}
	return backends.ValidateName(name)
}

// Open reads and unseals the session. It returns the plaintext, which the
// caller must wipe, and the stored version. A missing session matches
// ErrNotFound and backends.ErrNotFound; a damaged one ErrCorrupt.
func (s *Store) Open(ctx context.Context) ([]byte, backends.Version, error) {
	if err := checkName(s.name); err != nil {
		return nil, "", err
	}
	blob, ver, err := s.v.backend.Get(ctx, s.name)
	if err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return nil, "", notFound(fmt.Sprintf("session %q", s.name), err)
		}
		return nil, "", fmt.Errorf("vault: read session %q: %w", s.name, err)
	}
	plain, err := s.v.OpenSession(ctx, s.name, blob)
	if err != nil {
		return nil, "", err
	}
	return plain, ver, nil
}

// Seal seals plaintext under the current key generation and stores it if
// the stored version is still ifVersion (backends.Absent: no session yet;
// backends.Any: unconditionally). It does not keep plaintext. A version
// mismatch matches backends.ErrConflict and changes nothing.
//
// Writes with Absent or Any, which no version check can fence, take the
// vault's header lock and re-read a changed header first, so that they
// never seal under a generation a concurrent RotateKey is dropping.
func (s *Store) Seal(ctx context.Context, plaintext []byte, ifVersion backends.Version) (backends.Version, error) {
	if err := checkName(s.name); err != nil {
		return "", err
	}
	if len(plaintext) > MaxPlaintextSize {
		return "", &FormatError{Structure: "session", Name: s.name, Field: "plaintext", Reason: fmt.Sprintf("%d bytes, limit %d", len(plaintext), MaxPlaintextSize), Err: ErrTooLarge}
	}
	if ifVersion == backends.Absent || ifVersion == backends.Any {
		l, err := s.v.locks.lock(ctx, backends.HeaderName)
		if err != nil {
			return "", fmt.Errorf("vault: seal %q: lock header: %w", s.name, err)
		}
		defer l.Unlock(context.WithoutCancel(ctx))
		if err := s.v.reload(ctx); err != nil {
			return "", err
		}
	}
	var above uint64
	if ifVersion == backends.Any {
		// An unconditional write follows no read of the blob it
		// replaces: seal above that blob's counter, so that readers who
		// saw it do not take this one for a rollback even if this
		// machine's clock runs behind the writer's. (The stored counter
		// is not authenticated here, so it only raises this seal's
		// counter, never a floor.)
		if cur, _, err := s.v.backend.Get(ctx, s.name); err == nil {
			if env, err := parseEnvelope(s.name, cur); err == nil {
				above = env.counter
			}
		}
	}
	blob, counter, err := s.v.sealSessionAbove(s.name, plaintext, above)
	if err != nil {
		return "", err
	}
	ver, err := s.v.backend.Put(ctx, s.name, blob, ifVersion)
	if err != nil {
		return "", fmt.Errorf("vault: write session %q: %w", s.name, err)
	}
	if err := s.v.noteWritten(s.name, counter); err != nil {
		return ver, err
	}
	return ver, nil
}

// Delete removes the stored session if its version is ifVersion.
func (s *Store) Delete(ctx context.Context, ifVersion backends.Version) error {
	if err := checkName(s.name); err != nil {
		return err
	}
	if err := s.v.checkOpen(); err != nil {
		return err
	}
	// The counter of the blob deleted, so that it cannot come back.
	var counter uint64
	if blob, _, err := s.v.backend.Get(ctx, s.name); err == nil {
		if env, err := parseEnvelope(s.name, blob); err == nil {
			counter = env.counter
		}
	}
	if err := s.v.backend.Delete(ctx, s.name, ifVersion); err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			// The blob read above is gone all the same (deleted by
			// another writer, or by this call: a backend that retried
			// after a lost reply finds nothing left), so it must not
			// come back either.
			if counter > 0 {
				if nerr := s.v.noteDeleted(s.name, counter); nerr != nil {
					return nerr
				}
			}
			return notFound(fmt.Sprintf("session %q", s.name), err)
		}
		return fmt.Errorf("vault: delete session %q: %w", s.name, err)
	}
	return s.v.noteDeleted(s.name, counter)
}

// Lock takes the lock for this session: the backend's cross-process lock
// when the backend is a backends.Locker, else a lock that excludes only
// this process.
func (s *Store) Lock(ctx context.Context) (backends.Lock, error) {
	if err := checkName(s.name); err != nil {
		return nil, err
	}
	if err := s.v.checkOpen(); err != nil {
		return nil, err
	}
	return s.v.locks.lock(ctx, s.name)
}

func (v *Vault) checkOpen() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	return nil
}

// SealSession seals plaintext as the session called name under the current
// key generation and returns the blob, without storing it. The blob opens
// only with this vault, under this name. Store.Seal is this plus the
// write.
//
// The blob is an envelope of version 2 (version 3, sealed in 64 KiB
// chunks on up to GOMAXPROCS cores, for a plaintext above 256 KiB),
// whose rollback counter is above every counter this Vault has seen for
// name (see ErrRollback). SealedSize gives its length.
func (v *Vault) SealSession(name string, plaintext []byte) ([]byte, error) {
	blob, _, err := v.sealSession(name, plaintext)
	return blob, err
}

// sealSession is SealSession; it also returns the blob's rollback
// counter.
func (v *Vault) sealSession(name string, plaintext []byte) ([]byte, uint64, error) {
	return v.sealSessionAbove(name, plaintext, 0)
}

// sealSessionAbove is sealSession with a counter above above too.
func (v *Vault) sealSessionAbove(name string, plaintext []byte, above uint64) ([]byte, uint64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	if len(plaintext) > MaxPlaintextSize {
		return nil, 0, &FormatError{Structure: "session", Name: name, Field: "plaintext", Reason: fmt.Sprintf("%d bytes, limit %d", len(plaintext), MaxPlaintextSize), Err: ErrTooLarge}
	}
	counter := max(v.nextCounter(name), above+1)
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return nil, 0, ErrClosed
	}
	g := v.current()
	out := make([]byte, 0, sealedSize(len(plaintext)))
	return sealEnvelope(out, g.aead, &v.hdr.id, g.n, counter, name, plaintext), counter, nil
}

// OpenSession opens a blob made by SealSession (or read from the backend)
// for the session called name. It decrypts in place: the returned
// plaintext shares blob's memory, and the caller wipes it. On failure no
// plaintext is returned and blob's ciphertext is zeroed. A blob sealed
// under a generation this Vault does not know makes it re-read the header
// once (a rotation by another process). A blob older than one this Vault
// (or its freshness file) has seen for name is refused with an error
// matching ErrRollback, after it authenticated.
func (v *Vault) OpenSession(ctx context.Context, name string, blob []byte) ([]byte, error) {
	return v.openSession(ctx, name, blob, true)
}

// openSession is OpenSession; fresh false skips the rollback check
// (Recover opens an older generation on purpose).
func (v *Vault) openSession(ctx context.Context, name string, blob []byte, fresh bool) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	env, err := parseEnvelope(name, blob)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		plain, known, err := v.openEnvelope(name, env)
		if known && err == nil && fresh {
			if err := v.checkFresh(name, env); err != nil {
				secmem.Wipe(plain)
				return nil, err
			}
		}
		if known || err != nil {
			return plain, err
		}
		if attempt > 0 {
			return nil, &FormatError{Structure: "session", Name: name, Field: "generation", Reason: fmt.Sprintf("sealed under key generation %d, which the vault header does not hold", env.gen), Err: ErrCorrupt}
		}
		if err := v.reload(ctx); err != nil {
			return nil, err
		}
	}
}

// openEnvelope opens env if its generation is known; known reports
// whether it was.
func (v *Vault) openEnvelope(name string, env envelope) (plain []byte, known bool, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return nil, true, ErrClosed
	}
	g := v.generation(env.gen)
	if g == nil {
		return nil, false, nil
	}
	plain, err = openEnvelope(g.aead, &v.hdr.id, name, env)
	return plain, true, err
}

// Sessions returns the names of the vault's sessions, sorted.
func (v *Vault) Sessions(ctx context.Context) ([]string, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	names, err := v.backend.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: list sessions: %w", err)
	}
	return names, nil
}
