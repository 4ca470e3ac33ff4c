package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// RotateKey replaces the vault's data key: it adds a new key generation
// to the header, re-seals every session under it (each write atomic and
// compare-and-set on the session's version), opens every session again to
// verify it is sealed under the new generation, and only then drops the
// old generation from the header. progress, if not nil, is called after
// each session of the re-seal pass with the count done and the total:
// one call at a time, done rising by one each call. It runs while
// RotateKey holds the header lock, so it must not create sessions or
// change the header (that would wait for the lock for ever).
//
// Sessions are re-sealed by a few concurrent writers (6), each write
// still one atomic compare-and-set Put of one session. This is for speed
// only, and the speed comes from overlapping fsyncs: a file system
// commits the journal once for several fsyncs in flight, so a rotation
// of n sessions takes less wall time than n serial durable writes, the
// baseline it is measured against (BenchmarkRotateKey1000 in
// cmd/vaultctl; BenchmarkRotateKeyWorkers here compares it with the same
// rotation done serially). The first failing session stops the
// rotation, and its error is returned.
//
// It is safe to stop at any instant (a crash, kill -9, a cancelled ctx):
// each session is always sealed under a generation the stored header
// holds, and running RotateKey again finishes the interrupted rotation
// (it then adds no further generation).
//
// Every key slot is re-wrapped, so RotateKey needs the key-encryption key
// of every slot: the slot that opened this Vault, keychain slots through
// the Vault's key store, and passphrase slots through the Vault's
// passphrase (one argon2id run per passphrase slot not already unlocked).
// A slot it cannot re-wrap stops it before any change, with an error
// matching ErrWrongKey: open the vault with that slot's passphrase or key
// store too, or remove the slot.
//
// RotateKey holds the vault's header lock throughout, so that writers
// creating sessions (which take that lock) wait for it; writers updating
// a session are fenced by its version.
func (v *Vault) RotateKey(ctx context.Context, progress func(done, total int)) error {
	return v.rotateKey(ctx, progress, resealWorkers)
}

// rotateKey is RotateKey with workers sessions re-sealed at once.
func (v *Vault) rotateKey(ctx context.Context, progress func(done, total int), workers int) error {
	l, err := v.locks.lock(ctx, backends.HeaderName)
	if err != nil {
		return fmt.Errorf("vault: rotate: lock header: %w", err)
	}
	defer l.Unlock(context.WithoutCancel(ctx))
	if err := v.reload(ctx); err != nil {
		return err
	}
	if err := v.purgeLocked(ctx); err != nil {
		return err
	}

	// 1. Add a generation, unless an interrupted rotation left one.
	v.mu.RLock()
	rotating := len(v.gens) > 1
	last := v.current().n
	v.mu.RUnlock()
	if !rotating {
		if last == 1<<32-1 {
			return errors.New("vault: rotate: generation numbers exhausted")
		}
		err := v.rewrapAll(ctx, func(h *header) (map[uint32]*secmem.Buffer, error) {
			n := h.current() + 1
			key := secmem.New(keySize)
			rand.Read(key.Bytes())
			h.gens = append(h.gens, n)
			return map[uint32]*secmem.Buffer{n: key}, nil
		})
		if err != nil {
			return fmt.Errorf("vault: rotate: add generation: %w", err)
		}
		if err := v.purgeLocked(ctx); err != nil {
			return err
		}
	}

	// 2. Re-seal until a whole pass finds every session under the
	// current generation: that last pass is the verification.
	for pass := 0; ; pass++ {
		if pass == rotatePasses {
			return fmt.Errorf("vault: rotate: sessions still change generation after %d passes; the rotation stays in progress, run it again", rotatePasses)
		}
		var cb func(done, total int)
		if pass == 0 {
			cb = progress
		}
		changed, err := v.resealAll(ctx, cb, workers)
		if err != nil {
			return err
		}
		if changed == 0 {
			break
		}
	}

	// 3. Drop every generation but the current one.
	err = v.rewrapAll(ctx, func(h *header) (map[uint32]*secmem.Buffer, error) {
		h.gens = h.gens[len(h.gens)-1:]
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("vault: rotate: drop old generations: %w", err)
	}
	// 4. Purge: the header before step 3 (it wraps the dropped keys) and
	// every session's previous generation (sealed under them) go.
	return v.purgeLocked(ctx)
}

// rewrapAll changes the header's generation list with change (which
// returns the keys of generations it adds) and re-wraps every slot for
// the new list. The header lock must be held.
func (v *Vault) rewrapAll(ctx context.Context, change func(h *header) (map[uint32]*secmem.Buffer, error)) error {
	keks, err := v.allKEKs(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, k := range keks {
			k.Destroy()
		}
	}()
	return v.updateHeaderLocked(ctx, func(h *header, keys [][]byte) (map[SlotID]*secmem.Buffer, map[uint32]*secmem.Buffer, error) {
		byGen := make(map[uint32][]byte, len(h.gens))
		for i, n := range h.gens {
			byGen[n] = keys[i]
		}
		// Every slot must open with the key it will be re-wrapped
		// under, as the header is now: a slot added or changed since
		// allKEKs (by a writer that bypassed the lock) stops the
		// change, rather than be re-wrapped under a key its
		// passphrase or keychain entry no longer gives.
		for i := range h.slots {
			s := &h.slots[i]
			kek := keks[s.id]
			if kek == nil {
				return nil, nil, &SlotError{Slot: s.id, Kind: s.kind, Reason: "no key to re-wrap this slot", Err: ErrWrongKey}
			}
			old, err := unwrapSlot(h, s, kek.Bytes())
			if err != nil {
				return nil, nil, &SlotError{Slot: s.id, Kind: s.kind, Reason: "the slot changed while re-wrapping it; run the rotation again", Err: err}
			}
			destroyAll(old)
		}
		added, err := change(h)
		if err != nil {
			return nil, nil, err
		}
		newKeys := make([][]byte, len(h.gens))
		for i, n := range h.gens {
			if k := added[n]; k != nil {
				newKeys[i] = k.Bytes()
			} else {
				newKeys[i] = byGen[n]
			}
		}
		for i := range h.slots {
			s := &h.slots[i]
			wrapSlot(h, s, keks[s.id].Bytes(), newKeys)
		}
		return nil, added, nil
	})
}

// allKEKs returns a copy of the KEK of every slot of the current header,
// fetching keychain keys from the key store and deriving passphrase slots'
// keys from the Vault's passphrase as needed (and remembering them). The
// caller destroys the copies.
func (v *Vault) allKEKs(ctx context.Context) (map[SlotID]*secmem.Buffer, error) {
	v.mu.RLock()
	h := v.hdr.clone()
	hasPass := v.pass != nil
	v.mu.RUnlock()
	// The header may have been re-read since Open: derivations here obey
	// the same budget (budget.go).
	if hasPass {
		if err := checkBudget(v.policy, passphraseParams(h, nil)); err != nil {
			return nil, err
		}
	}
	out := make(map[SlotID]*secmem.Buffer, len(h.slots))
	fail := func(err error) (map[SlotID]*secmem.Buffer, error) {
		for _, k := range out {
			k.Destroy()
		}
		return nil, err
	}
	for i := range h.slots {
		s := &h.slots[i]
		v.mu.RLock()
		if k := v.keks[s.id]; k != nil {
			c := secmem.New(keySize)
			copy(c.Bytes(), k.Bytes())
			out[s.id] = c
		}
		ks, hasPass, sealer := v.keyStore, v.pass != nil, v.sealer
		v.mu.RUnlock()
		if c := out[s.id]; c != nil {
			// A remembered key may be stale: another Vault (or
			// process) changed this slot's passphrase, keeping its
			// id. Re-wrapping with it would leave a slot that its
			// passphrase no longer opens, so check that it fits
			// (one AEAD open), and fetch or derive the key again
			// if it does not.
			keys, err := unwrapSlot(h, s, c.Bytes())
			if err == nil {
				destroyAll(keys)
				continue
			}
			c.Destroy()
			delete(out, s.id)
			v.mu.Lock()
			if k := v.keks[s.id]; k != nil {
				k.Destroy()
				delete(v.keks, s.id)
			}
			v.mu.Unlock()
		}
		var (
			kek *secmem.Buffer
			err error
		)
		switch {
		case s.kind == KeychainSlot && ks != nil:
			kek, err = fetchKEK(ctx, ks, h, s)
		case s.kind == PassphraseSlot && hasPass:
			kek, err = v.derive(s)
		case s.kind == TPMSlot && sealer != nil:
			kek, err = unsealKEK(ctx, sealer, s)
		default:
			err = &SlotError{Slot: s.id, Kind: s.kind, Reason: fmt.Sprintf("re-wrapping this slot needs its %s: open the vault with it too, or remove the slot", map[SlotKind]string{PassphraseSlot: "passphrase", KeychainSlot: "key store", TPMSlot: "TPM"}[s.kind]), Err: ErrWrongKey}
		}
		if err != nil {
			return fail(err)
		}
		// Prove the key fits before relying on it.
		keys, err := unwrapSlot(h, s, kek.Bytes())
		if err != nil {
			kek.Destroy()
			return fail(err)
		}
		destroyAll(keys)
		out[s.id] = kek
		keep := secmem.New(keySize)
		copy(keep.Bytes(), kek.Bytes())
		v.mu.Lock()
		if old := v.keks[s.id]; old != nil {
			old.Destroy()
		}
		v.keks[s.id] = keep
		v.mu.Unlock()
	}
	return out, nil
}

// resealAll re-seals every session not sealed under the current
// generation and opens every other one to check it. It returns how many it
// re-sealed.
//
// Up to workers sessions are handled at once. Each session's
// write is still one atomic compare-and-set Put, exactly as when they ran
// one after another: only writes to different sessions overlap, and the
// order in which sessions are re-sealed never mattered to the crash
// protocol (every session opens under a generation the header holds
// throughout this pass). What overlapping buys is time: a durable write
// waits mostly for its fsyncs, and the file system commits the journal
// for several concurrent fsyncs at once (ext4 batches them).
//
// progress is called once per session, in turn (never concurrently),
// with done rising by one each call. The first error stops the workers:
// no further session is started, writes in flight are cancelled (each is
// atomic, so it happened whole or not at all) and that error is returned.
func (v *Vault) resealAll(ctx context.Context, progress func(done, total int), workers int) (int, error) {
	names, err := v.Sessions(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64 // index of the next name to take
		changed atomic.Int64

		mu       sync.Mutex // serializes progress, guards done and firstErr
		done     int
		firstErr error
	)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(names) || ctx.Err() != nil {
				return
			}
			n, err := v.reseal(ctx, names[i])
			mu.Lock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
				return
			}
			if firstErr != nil {
				mu.Unlock()
				return
			}
			changed.Add(int64(n))
			done++
			if progress != nil {
				progress(done, len(names))
			}
			mu.Unlock()
		}
	}
	workers = max(1, min(workers, len(names)))
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if firstErr == nil && done < len(names) {
		// No reseal failed, yet workers stopped early: the caller's
		// ctx ended (this function cancels its own only on an error).
		firstErr = ctx.Err()
	}
	return int(changed.Load()), firstErr
}

// reseal opens one session and, if it is not under the current
// generation, seals it under it, compare-and-set on its version
// (re-reading it after a conflict). It returns 1 if it wrote.
func (v *Vault) reseal(ctx context.Context, name string) (int, error) {
	for attempt := 0; attempt < putRetries; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		blob, ver, err := v.backend.Get(ctx, name)
		if errors.Is(err, backends.ErrNotFound) {
			return 0, nil // deleted meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("vault: rotate: read session %q: %w", name, err)
		}
		env, err := parseEnvelope(name, blob)
		if err != nil {
			return 0, fmt.Errorf("vault: rotate: session %q does not open (repair it with Recover or delete it, then run the rotation again; it stays in progress): %w", name, err)
		}
		plain, err := v.OpenSession(ctx, name, blob)
		if err != nil {
			return 0, fmt.Errorf("vault: rotate: session %q does not open (repair it with Recover or delete it, then run the rotation again; it stays in progress): %w", name, err)
		}
		v.mu.RLock()
		cur := v.current().n
		v.mu.RUnlock()
		if env.gen == cur {
			secmem.Wipe(plain)
			return 0, nil
		}
		sealed, counter, err := v.sealSession(name, plain)
		secmem.Wipe(plain)
		if err != nil {
			return 0, err
		}
		if _, err := v.backend.Put(ctx, name, sealed, ver); err != nil {
			if isConflict(err) {
				continue
			}
			return 0, fmt.Errorf("vault: rotate: write session %q: %w", name, err)
		}
		return 1, v.noteWritten(name, counter)
	}
	return 0, fmt.Errorf("vault: rotate: session %q kept changing (%d version conflicts); run the rotation again", name, putRetries)
}
