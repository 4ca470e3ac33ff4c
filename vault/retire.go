package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sessionvault/sessionvault/backends"
)

// Retirement.
//
// A backend that keeps previous generations (backends.Recoverer) would
// otherwise keep, after a header change, the header as it was before: it
// wraps the current data keys under the slots of that time, so a retired
// passphrase or a removed slot's key would still open it, and after a
// rotation it would still hold the dropped generation's key, under which
// every session's previous generation is sealed.
//
// The rule (docs/FORMAT.md, "Retirement"): the previous generation of the
// header is always a spare copy of the current header, byte for byte.
// Every header change is followed by a purge, under the header lock:
//
//  1. If the kept previous header P equals the current header H, nothing
//     is retired: done. If there is none, nothing is retired either, but
//     H is written again first, so that every change is made with a
//     previous header in place (else a change killed between its two
//     renames would leave the old header in a temp link and no marker).
//     Otherwise a purge is pending: P is the header before the last
//     change.
//  2. If P holds a generation H does not (a rotation dropped it), or P
//     does not parse: drop the previous generation (and any leftover
//     copy) of every session whose current blob is sealed under a
//     generation H holds. A session whose current blob is not (only after
//     a forced RecoverHeader) keeps its previous generation, which is what
//     Recover needs.
//  3. Delete from the key store the keys of keychain slots P has and H
//     has not (when the Vault has a key store).
//  4. Drop P (and any leftover copy of the header).
//  5. Write H again, so that the spare exists again (best effort).
//
// P is dropped last, so it is the "purge pending" marker: a crash at any
// step leaves P != H, and the next purge (Open, or the next header
// change, or a rerun of the command) redoes every step; each is
// idempotent. The current header is never touched, so the vault opens at
// every instant with the credentials of the last committed change.

// ErrPurgePending: a header change was made, but the copies that still
// open with the credential or key it retired (the previous generation of
// the header, of the sessions, a keychain entry) could not all be removed
// yet. The change itself is committed. The next Open or header change
// finishes the purge; Vault.Purge does it now.
var ErrPurgePending error = &sentinel{msg: "vault: retired copies still kept (purge pending)"}

// PurgeError reports a purge that did not finish. It matches
// ErrPurgePending and the cause.
//
// A zero PurgeError is not a meaningful error: the package makes them.
type PurgeError struct {
	Step string // what failed, e.g. "drop the previous header"
	Err  error
}

func (e *PurgeError) Error() string {
	return fmt.Sprintf("vault: retired copies still kept: %s: %v (the change is made; the next open or header change finishes the purge)", e.Step, e.Err)
}

// Unwrap returns ErrPurgePending and the cause.
func (e *PurgeError) Unwrap() []error { return []error{ErrPurgePending, e.Err} }

// Purge removes every copy the backend keeps that a retired credential or
// a dropped key generation still opens (see "Retirement" in
// docs/FORMAT.md), if a header change left any: the previous generation
// of the header, after a rotation the previous generations of the
// sessions, and the key store entries of removed keychain slots. It
// holds the header lock. ChangePassphrase, AddPassphraseSlot,
// AddKeychainSlot, RemoveSlot and RotateKey purge before they return, and
// Open finishes a purge a crash interrupted; Purge is for callers that
// want to be sure (vaultctl verify). It returns nil when nothing was
// pending.
func (v *Vault) Purge(ctx context.Context) error {
	l, err := v.locks.lock(ctx, backends.HeaderName)
	if err != nil {
		return fmt.Errorf("vault: purge: lock header: %w", err)
	}
	defer l.Unlock(context.WithoutCancel(ctx))
	if err := v.reload(ctx); err != nil {
		return err
	}
	return v.purgeLocked(ctx)
}

// purgePending reports, without the lock, whether the backend keeps a
// previous header that differs from cur.
func (v *Vault) purgePending(ctx context.Context, cur []byte) bool {
	rec, ok := v.backend.(backends.Recoverer)
	if !ok {
		return false
	}
	prev, _, err := rec.Previous(ctx, backends.HeaderName)
	return err == nil && !bytes.Equal(prev, cur)
}

// purgeOnOpen finishes a purge that a crash interrupted, if one is
// pending. It waits for the header lock at most openPurgeWait, and then
// purges without it: the lock may be a lease that a killed process still
// holds (Redis keeps it until its TTL ends). That is safe, because every
// step of a purge only removes copies that the committed header no
// longer needs, each idempotent, and the spare write is a compare-and-set
// on the version of the header the purge read. Failures are kept for
// Info and never fail Open (a vault on read-only storage still opens).
func (v *Vault) purgeOnOpen(ctx context.Context, cur []byte) {
	if !v.purgePending(ctx, cur) {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, openPurgeWait)
	l, err := v.locks.lock(lctx, backends.HeaderName)
	cancel()
	if err == nil {
		defer l.Unlock(context.WithoutCancel(ctx))
	}
	err = v.reload(ctx)
	if err == nil {
		err = v.purgeLocked(ctx)
	}
	v.setPurgeErr(err)
}

func (v *Vault) setPurgeErr(err error) {
	v.mu.Lock()
	v.purgeErr = err
	v.mu.Unlock()
}

// purgeLocked runs the purge. The header lock should be held (see
// purgeOnOpen for when it is not) and v's header must be the stored one
// (reload first).
func (v *Vault) purgeLocked(ctx context.Context) (err error) {
	defer func() { v.setPurgeErr(err) }()
	rec, ok := v.backend.(backends.Recoverer)
	if !ok {
		return nil
	}
	cur, curVer, err := v.backend.Get(ctx, backends.HeaderName)
	if err != nil {
		return &PurgeError{Step: "read the header", Err: err}
	}
	prev, _, err := rec.Previous(ctx, backends.HeaderName)
	switch {
	case errors.Is(err, backends.ErrNotFound):
		// Nothing is pending, but the spare is missing (a purge killed
		// between its last two steps, or a vault older than the
		// spare). Write it before any change: a change made while there
		// is no previous header, killed between its rename and the
		// rename of the old header's link over the previous generation,
		// would leave the old header in a temp link with no marker to
		// say a purge is pending.
		v.writeSpare(ctx, cur, curVer)
		return nil
	case err != nil:
		return &PurgeError{Step: "read the previous header", Err: err}
	case bytes.Equal(prev, cur):
		return nil
	}
	v.mu.RLock()
	h := v.hdr.clone()
	ks := v.keyStore
	v.mu.RUnlock()

	// 2. Sessions, when a generation was dropped (or P is unreadable).
	// P is parsed for its structure only (generations, slot ids), without
	// the KDF policy: no key is derived from it, and its slot ids are
	// what step 3 needs even when the policy refuses P's parameters (a
	// previous header whose passphrase slot was costlier than this
	// Vault's policy allows must still name the keychain slots the change
	// removed). One the policy refuses is treated as unreadable for the
	// sessions, which purges the most. A P that fails its checksum names
	// nothing: its keychain entries then stay in the key store, where
	// they open nothing the backend keeps once P is dropped.
	p, perr := parseHeaderStructure(prev)
	dropped := perr != nil
	if p != nil {
		for i := range p.slots {
			if s := &p.slots[i]; s.kind == PassphraseSlot && v.policy.Check(s.params) != nil {
				dropped = true
			}
		}
		for _, g := range p.gens {
			if !containsGen(h.gens, g) {
				dropped = true
			}
		}
	}
	if dropped {
		if err := v.dropSessionPrevs(ctx, rec, h.gens); err != nil {
			return err
		}
	}

	// 3. Keys of removed keychain slots. A key store that fails does
	// not hold the purge up: once P is dropped that key opens nothing
	// the backend keeps. The failure is returned at the end.
	var ksErr error
	if p != nil && ks != nil {
		for i := range p.slots {
			s := &p.slots[i]
			if s.kind != KeychainSlot || h.slotByID(s.id) != nil {
				continue
			}
			kctx, cancel := keyStoreCtx(ctx)
			err := ks.DeleteKey(kctx, account(p.id, s.id))
			cancel()
			if err != nil && !errors.Is(err, backends.ErrNotFound) && ksErr == nil {
				ksErr = &PurgeError{Step: fmt.Sprintf("delete the key of removed keychain slot %s from the key store", s.id), Err: err}
			}
		}
	}

	// 4. The previous header: the marker goes last.
	if err := rec.DropPrevious(ctx, backends.HeaderName); err != nil {
		return &PurgeError{Step: "drop the previous header", Err: err}
	}
	// 5. A spare copy again (best effort: the purge is complete without).
	v.writeSpare(ctx, cur, curVer)
	return ksErr
}

// writeSpare writes the current header cur (at version curVer) again, so
// that the backend's previous generation of it is a copy of it. Best
// effort: a failure leaves no spare, which the next purge writes.
func (v *Vault) writeSpare(ctx context.Context, cur []byte, curVer backends.Version) {
	if nv, err := v.backend.Put(ctx, backends.HeaderName, cur, curVer); err == nil {
		v.mu.Lock()
		if v.hdrVer == curVer {
			v.hdrVer = nv
		}
		v.mu.Unlock()
	}
}

func containsGen(gens []uint32, g uint32) bool {
	for _, x := range gens {
		if x == g {
			return true
		}
	}
	return false
}

// dropSessionPrevs drops the previous generation (and leftover copies)
// of every session whose current blob is sealed under one of gens, a few
// at a time (their folder fsyncs overlap, as RotateKey's writes do).
func (v *Vault) dropSessionPrevs(ctx context.Context, rec backends.Recoverer, gens []uint32) error {
	names, err := v.backend.List(ctx)
	if err != nil {
		return &PurgeError{Step: "list sessions", Err: err}
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := func() {
		defer wg.Done()
		for {
			i := int(next.Add(1) - 1)
			if i >= len(names) {
				return
			}
			mu.Lock()
			stop := firstErr != nil
			mu.Unlock()
			if stop {
				return
			}
			if err := v.dropSessionPrev(ctx, rec, names[i], gens); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
		}
	}
	for range max(1, min(resealWorkers, len(names))) {
		wg.Add(1)
		go work()
	}
	wg.Wait()
	return firstErr
}

func (v *Vault) dropSessionPrev(ctx context.Context, rec backends.Recoverer, name string, gens []uint32) error {
	blob, _, err := v.backend.Get(ctx, name)
	if errors.Is(err, backends.ErrNotFound) {
		return nil
	}
	if err != nil {
		return &PurgeError{Step: fmt.Sprintf("read session %q", name), Err: err}
	}
	env, err := parseEnvelope(name, blob)
	if err != nil || !containsGen(gens, env.gen) {
		// Its current blob does not open under this header: its
		// previous generation is what Recover needs.
		return nil
	}
	if err := rec.DropPrevious(ctx, name); err != nil {
		return &PurgeError{Step: fmt.Sprintf("drop the previous generation of session %q", name), Err: err}
	}
	return nil
}
