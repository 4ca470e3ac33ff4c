// Package vault keeps sessions sealed at rest: one small header blob that
// holds the vault's key generations wrapped in key slots, and one sealed
// blob per session, stored in a backends.Backend.
//
// The byte format is specified in docs/FORMAT.md. In short: each session
// is sealed with XChaCha20-Poly1305 under a subkey of the current key
// generation's random 256-bit data key, with a fresh random 24-byte nonce
// and additional data binding the vault id, the session name and the
// generation, so a blob copied to another name or vault does not open. The
// data keys are wrapped in key slots, each under one key-encryption key: a
// passphrase slot derives it with argon2id (package kdf), a keychain slot
// keeps a random one in an OS keychain (a backends.KeyStore). The header is
// authenticated with an HMAC under a subkey of the current data key, and
// carries a SHA-256 checksum so that damage is told apart from a wrong
// passphrase before any key is derived.
//
// Opening a vault runs argon2id once (per passphrase slot tried), never
// per session. The unlocked data keys stay in locked memory
// (internal/secmem) until Close, which wipes them.
//
// A Vault is safe for concurrent use. Several processes may share one
// vault: header updates are compare-and-set on the header's version and
// taken under the backend's lock (backends.Locker) when it has one, and a
// process that meets a session sealed under a generation it does not know
// re-reads the header once.
//
// # Recovery
//
// Backends that keep the previous generation of every blob
// (backends.Recoverer: the file, memory and Redis backends) let damage be
// undone. Vault.Recover restores a session that does not open from its
// previous generation. RecoverHeader does the same for the header, which
// no Vault can be opened without: it restores the header's previous
// generation only if that opens with the caller's credentials and every
// session opens under it (or the caller forces it), and Create writes the
// header twice so that a spare copy exists from the start. Only damage is
// repaired: a wrong passphrase or key, a newer format or a KDF policy
// refusal never leads to a restore. docs/FORMAT.md, "Recovery", gives the
// rules.
//
// # Retirement and rollback
//
// Recovery never keeps what a retired credential opens: after every
// header change (ChangePassphrase, a slot added or removed, RotateKey) the
// Vault purges the previous header and, after a rotation, every session's
// previous generation, crash-safely (see Purge and docs/FORMAT.md,
// "Retirement"). Sessions are sealed with a rollback counter, and a Vault
// refuses an older blob than one it has seen with ErrRollback;
// WithFreshnessFile makes that survive a restart. SECURITY.md says what
// neither can reach.
package vault

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
)

var (
	errEmptyPassphrase = errors.New("vault: empty passphrase")
	errNoCredentials   = errors.New("vault: no passphrase (WithPassphrase), key store (WithKeyStore) or TPM (WithTPM) given")
)

// Vault is an open vault: its header, and its data keys in locked memory.
//
// The zero value is not usable: call Create, Open or OpenOrCreate.
type Vault struct {
	backend  backends.Backend
	policy   kdf.Policy
	keyStore backends.KeyStore
	sealer   KEKSealer // TPM slots' sealer, or nil
	locks    *lockSet

	mu         sync.RWMutex
	closed     bool
	pass       *secmem.Buffer // passphrase given to Open/Create, or nil
	hdr        *header
	hdrVer     backends.Version
	gens       []*generation // parallel to hdr.gens; the last is current
	keks       map[SlotID]*secmem.Buffer
	unlockedBy SlotID
	purgeErr   error // the last purge's failure (retire.go), for Info

	rb rollbackState // rollback floors (rollback.go)
}

// generation is one unlocked key generation.
type generation struct {
	n    uint32
	key  *secmem.Buffer // the data key
	aead cipher.AEAD    // session sealing, under HKDF(key, "session seal")
}

func newGeneration(n uint32, key *secmem.Buffer, id *[idSize]byte) *generation {
	return &generation{n: n, key: key, aead: newAEAD(key.Bytes(), id, labelSessionSeal, nil)}
}

func (g *generation) destroy() {
	wipeAEAD(g.aead)
	g.key.Destroy()
}

// account returns the KeyStore account of a keychain slot.
func account(vaultID [idSize]byte, slotID SlotID) string {
	return hex.EncodeToString(vaultID[:]) + "/" + slotID.String()
}

// keyStoreCtx bounds a key store call when ctx has no deadline.
func keyStoreCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, keyStoreTimeout)
}

// Create makes a new vault in b and returns it open. It needs
// WithPassphrase, WithKeyStore or both: each adds a key slot, and either
// opens the vault. It fails with ErrExists if b already holds a vault
// header or any session.
//
// When b keeps previous generations (backends.Recoverer), Create writes
// the header twice, the same bytes, so that b holds a spare copy of it
// from the start for RecoverHeader. If that second write fails, Create
// still succeeds (the header is complete; the next header change makes
// the spare).
func Create(ctx context.Context, b backends.Backend, opts ...Option) (*Vault, error) {
	c := newConfig(opts)
	ok := false
	defer func() {
		if !ok {
			c.pass.Destroy()
		}
	}()
	if c.passErr != nil {
		return nil, c.passErr
	}
	if c.pass == nil && c.keyStore == nil && c.sealer == nil {
		return nil, errNoCredentials
	}
	if c.pass != nil {
		if err := c.policy.Check(c.params); err != nil {
			return nil, &PolicyError{Err: err}
		}
		if err := checkBudget(c.policy, []kdf.Params{c.params}); err != nil {
			return nil, err
		}
	}
	if _, _, err := b.Get(ctx, backends.HeaderName); err == nil {
		return nil, fmt.Errorf("%w: the backend holds a vault header", ErrExists)
	} else if !errors.Is(err, backends.ErrNotFound) {
		return nil, fmt.Errorf("vault: create: %w", err)
	}
	names, err := b.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: create: %w", err)
	}
	if len(names) > 0 {
		return nil, fmt.Errorf("%w: the backend holds %d sessions but no vault header", ErrExists, len(names))
	}

	v := &Vault{backend: b, policy: c.policy, keyStore: c.keyStore, sealer: c.sealer, pass: c.pass, keks: map[SlotID]*secmem.Buffer{}}
	v.locks = locksFor(b)
	h := &header{gens: []uint32{1}}
	rand.Read(h.id[:])
	key := secmem.New(keySize)
	rand.Read(key.Bytes())
	v.gens = []*generation{newGeneration(1, key, &h.id)}
	v.hdr = h

	var keychainAccount string
	fail := func(err error) (*Vault, error) {
		if keychainAccount != "" {
			kctx, cancel := keyStoreCtx(context.WithoutCancel(ctx))
			_ = c.keyStore.DeleteKey(kctx, keychainAccount)
			cancel()
		}
		v.wipe()
		return nil, err
	}
	if c.keyStore != nil {
		s, kek, err := newKeychainSlot(ctx, h, v.keysOf(), c.keyStore)
		if err != nil {
			return fail(err)
		}
		keychainAccount = account(h.id, s.id)
		h.slots = append(h.slots, s)
		v.keks[s.id] = kek
	}
	if c.sealer != nil {
		s, kek, err := newTPMSlot(ctx, h, v.keysOf(), c.sealer)
		if err != nil {
			return fail(err)
		}
		h.slots = append(h.slots, s)
		v.keks[s.id] = kek
	}
	if c.pass != nil {
		s, kek, err := newPassphraseSlot(h, v.keysOf(), v.policy, c.pass.Bytes(), c.params)
		if err != nil {
			return fail(err)
		}
		h.slots = append(h.slots, s)
		v.keks[s.id] = kek
	}
	v.unlockedBy = h.slots[0].id
	h.sign(v.current().key.Bytes())
	ver, err := b.Put(ctx, backends.HeaderName, h.encode(), backends.Absent)
	if err != nil {
		if isConflict(err) {
			err = fmt.Errorf("%w: another process created a vault here: %w", ErrExists, err)
		} else {
			err = fmt.Errorf("vault: create: write header: %w", err)
		}
		return fail(err)
	}
	// A spare copy: writing the same header again makes a backend that
	// keeps previous generations (the file backend's .vault.hdr.prev)
	// hold one from the start, for RecoverHeader. Best effort: the vault
	// is complete without it, and the next header change makes one.
	if _, ok := b.(backends.Recoverer); ok {
		if nv, err := b.Put(ctx, backends.HeaderName, h.encode(), ver); err == nil {
			ver = nv
		}
	}
	v.hdrVer = ver
	if err := v.initRollback(c.freshness); err != nil {
		v.Close()
		return nil, err
	}
	ok = true
	return v, nil
}

// newSlotID returns a random slot id not used in h.
func newSlotID(h *header) SlotID {
	for {
		var id SlotID
		rand.Read(id[:])
		if h.slotByID(id) == nil {
			return id
		}
	}
}

// keysOf returns the data keys of v's generations, in order. v.mu must be
// held.
func (v *Vault) keysOf() [][]byte {
	keys := make([][]byte, len(v.gens))
	for i, g := range v.gens {
		keys[i] = g.key.Bytes()
	}
	return keys
}

// newKeychainSlot makes a keychain slot for h with a fresh random KEK,
// wrapping keys (one per generation of h), and stores the KEK in ks. It
// returns the slot and its KEK.
func newKeychainSlot(ctx context.Context, h *header, keys [][]byte, ks backends.KeyStore) (slot, *secmem.Buffer, error) {
	s := slot{kind: KeychainSlot, id: newSlotID(h)}
	svc, err := keyStoreService(ks)
	if err != nil {
		return slot{}, nil, err
	}
	s.service = svc
	kek := secmem.New(keySize)
	rand.Read(kek.Bytes())
	kctx, cancel := keyStoreCtx(ctx)
	defer cancel()
	if err := ks.PutKey(kctx, account(h.id, s.id), kek.Bytes()); err != nil {
		kek.Destroy()
		return slot{}, nil, &SlotError{Slot: s.id, Kind: KeychainSlot, Reason: "storing the key in the key store failed", Err: err}
	}
	wrapSlot(h, &s, kek.Bytes(), keys)
	return s, kek, nil
}

// newPassphraseSlot makes a passphrase slot for h (one argon2id run, after
// checking params against pol) wrapping keys. It returns the slot and its
// KEK.
func newPassphraseSlot(h *header, keys [][]byte, pol kdf.Policy, pass []byte, params kdf.Params) (slot, *secmem.Buffer, error) {
	if len(pass) == 0 {
		return slot{}, nil, errEmptyPassphrase
	}
	s := slot{kind: PassphraseSlot, id: newSlotID(h), params: params}
	rand.Read(s.salt[:])
	k, err := pol.Derive(pass, s.salt[:], params)
	if err != nil {
		return slot{}, nil, &PolicyError{Slot: s.id, Err: err}
	}
	kek := secmem.From(k.Bytes())
	k.Destroy()
	wrapSlot(h, &s, kek.Bytes(), keys)
	return s, kek, nil
}

// Open reads the vault header from b and unlocks it: with the key store's
// keys for the vault's keychain slots first (WithKeyStore), then with the
// TPM for its TPM slots (WithTPM), then with the passphrase
// (WithPassphrase, WithPassphraseCredential) for its passphrase slots.
// A key source that fails falls back to the next: a keychain that is
// locked or away, or has no entry for the slot, or a TPM that is missing,
// cleared or in another PCR state, still lets the passphrase open the
// vault. When nothing opens it, the error joins what each source said.
//
// Errors: ErrNotFound (no vault), ErrWrongKey (nothing given opens a
// slot; a keychain with no entry for the slot gives ErrWrongKey joined
// with the key store's backends.ErrNotFound, which does not match
// ErrNotFound, so OpenOrCreate never creates over it; the example of
// backends/memory.KeyStore shows it), ErrCorrupt,
// ErrUnsupportedVersion, ErrPolicy (a passphrase slot's parameters are
// outside the policy, or, when a passphrase is given, the passphrase
// slots together cost more than its kdf.Budget: refused before any
// derivation and before the key store is asked), or, when no other
// source opened the vault, the key store's or the TPM's own error (such
// as backends.ErrUnavailable or tpm.ErrUnavailable) when it could not be
// asked. OpenOrCreate creates the vault when there is none.
func Open(ctx context.Context, b backends.Backend, opts ...Option) (*Vault, error) {
	c := newConfig(opts)
	ok := false
	defer func() {
		if !ok {
			c.pass.Destroy()
		}
	}()
	if c.passErr != nil {
		return nil, c.passErr
	}
	if c.pass == nil && c.keyStore == nil && c.sealer == nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongKey, errNoCredentials)
	}
	blob, ver, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return nil, notFound("vault header", err)
		}
		return nil, fmt.Errorf("vault: open: read header: %w", err)
	}
	v, err := openHeaderBlob(ctx, b, c, blob, ver)
	if err != nil {
		return nil, err
	}
	if err := v.initRollback(c.freshness); err != nil {
		v.Close()
		return nil, err
	}
	ok = true
	v.purgeOnOpen(ctx, blob)
	return v, nil
}

// openHeaderBlob parses the header blob (stored at version ver) and unlocks
// it with c's credentials. On success the Vault owns c.pass; on failure
// the caller still does.
func openHeaderBlob(ctx context.Context, b backends.Backend, c *config, blob []byte, ver backends.Version) (*Vault, error) {
	h, err := parseHeader(blob, c.policy)
	if err != nil {
		return nil, err
	}
	v := &Vault{backend: b, policy: c.policy, keyStore: c.keyStore, sealer: c.sealer, pass: c.pass, keks: map[SlotID]*secmem.Buffer{}}
	v.locks = locksFor(b)
	keys, id, kek, err := v.unlock(ctx, h, true)
	if err != nil {
		return nil, err
	}
	v.keks[id] = kek
	v.unlockedBy = id
	v.install(h, ver, keys)
	return v, nil
}

// unlock finds a slot of h that opens with what v holds: remembered KEKs,
// then the key store, then (if derive) the passphrase. It returns the data
// keys (one per generation of h, MAC verified), the slot's id and its KEK.
func (v *Vault) unlock(ctx context.Context, h *header, derive bool) ([]*secmem.Buffer, SlotID, *secmem.Buffer, error) {
	var errs []error
	try := func(s *slot, kek *secmem.Buffer) ([]*secmem.Buffer, error) {
		keys, err := unwrapSlot(h, s, kek.Bytes())
		if err != nil {
			return nil, err
		}
		if !h.verifyMAC(keys[len(keys)-1].Bytes()) {
			destroyAll(keys)
			return nil, &FormatError{Structure: "header", Field: "mac", Reason: "HMAC mismatch after the key slot opened: the header was tampered with", Err: ErrCorrupt}
		}
		return keys, nil
	}
	// 0. The KDF budget, before anything is tried (budget.go).
	if derive && v.hasPassphrase() {
		if err := checkBudget(v.policy, passphraseParams(h, nil)); err != nil {
			return nil, SlotID{}, nil, err
		}
	}
	// 1. KEKs this Vault already holds (a header re-read).
	v.mu.RLock()
	for i := range h.slots {
		s := &h.slots[i]
		kek := v.keks[s.id]
		if kek == nil {
			continue
		}
		keys, err := try(s, kek)
		if err == nil {
			k := secmem.New(keySize)
			copy(k.Bytes(), kek.Bytes())
			v.mu.RUnlock()
			return keys, s.id, k, nil
		}
		if !errors.Is(err, ErrWrongKey) {
			v.mu.RUnlock()
			return nil, SlotID{}, nil, err
		}
	}
	v.mu.RUnlock()
	// 2. Keychain slots, through the key store; 3. TPM slots, through
	// the sealer. A source's error (locked, away, no entry; no TPM,
	// another TPM, changed PCRs) falls through to the next.
	v.mu.RLock()
	ks, sealer := v.keyStore, v.sealer
	v.mu.RUnlock()
	sources := []struct {
		kind  SlotKind
		given bool
		fetch func(*slot) (*secmem.Buffer, error)
	}{
		{KeychainSlot, ks != nil, func(s *slot) (*secmem.Buffer, error) { return fetchKEK(ctx, ks, h, s) }},
		{TPMSlot, sealer != nil, func(s *slot) (*secmem.Buffer, error) { return unsealKEK(ctx, sealer, s) }},
	}
	for _, src := range sources {
		if !src.given {
			continue
		}
		for j := range h.slots {
			s := &h.slots[j]
			if s.kind != src.kind {
				continue
			}
			kek, err := src.fetch(s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			keys, err := try(s, kek)
			if err != nil {
				kek.Destroy()
				if !errors.Is(err, ErrWrongKey) {
					return nil, SlotID{}, nil, err
				}
				errs = append(errs, err)
				continue
			}
			return keys, s.id, kek, nil
		}
	}
	// 4. Passphrase slots: one argon2id run each.
	if derive && v.hasPassphrase() {
		for i := range h.slots {
			s := &h.slots[i]
			if s.kind != PassphraseSlot {
				continue
			}
			kek, err := v.derive(s)
			if err != nil {
				return nil, SlotID{}, nil, err
			}
			keys, err := try(s, kek)
			if err != nil {
				kek.Destroy()
				if !errors.Is(err, ErrWrongKey) {
					return nil, SlotID{}, nil, err
				}
				errs = append(errs, err)
				continue
			}
			return keys, s.id, kek, nil
		}
	}
	if len(errs) == 0 {
		return nil, SlotID{}, nil, fmt.Errorf("%w: no key slot of this vault matches the credentials given", ErrWrongKey)
	}
	if len(errs) == 1 {
		return nil, SlotID{}, nil, errs[0]
	}
	return nil, SlotID{}, nil, errors.Join(errs...)
}

// fetchKEK gets a keychain slot's KEK from the key store ks.
func fetchKEK(ctx context.Context, ks backends.KeyStore, h *header, s *slot) (*secmem.Buffer, error) {
	kctx, cancel := keyStoreCtx(ctx)
	defer cancel()
	raw, err := ks.GetKey(kctx, account(h.id, s.id))
	if err != nil {
		reason := "the key store could not be read"
		if errors.Is(err, backends.ErrNotFound) {
			// A key that is not there cannot open the slot: for the
			// caller that is a wrong key, not a missing vault.
			return nil, &SlotError{Slot: s.id, Kind: KeychainSlot, Reason: "the key store has no key for this slot", Err: errors.Join(ErrWrongKey, err)}
		}
		return nil, &SlotError{Slot: s.id, Kind: KeychainSlot, Reason: reason, Err: err}
	}
	if len(raw) != keySize {
		secmem.Wipe(raw)
		return nil, &SlotError{Slot: s.id, Kind: KeychainSlot, Reason: fmt.Sprintf("the key store returned %d bytes, want %d", len(raw), keySize), Err: ErrWrongKey}
	}
	return secmem.From(raw), nil
}

// hasPassphrase reports whether v holds a passphrase.
func (v *Vault) hasPassphrase() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.pass != nil
}

// derive runs argon2id for a passphrase slot with v's passphrase. It holds
// v.mu (read) throughout, so that Close or ChangePassphrase cannot destroy
// the passphrase while argon2id reads it.
func (v *Vault) derive(s *slot) (*secmem.Buffer, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.pass == nil {
		return nil, ErrClosed
	}
	k, err := v.policy.Derive(v.pass.Bytes(), s.salt[:], s.params)
	if err != nil {
		return nil, &PolicyError{Slot: s.id, Err: err}
	}
	kek := secmem.From(k.Bytes())
	k.Destroy()
	return kek, nil
}

func destroyAll(keys []*secmem.Buffer) {
	for _, k := range keys {
		k.Destroy()
	}
}

// install makes h (read at version ver, with its data keys) v's header,
// keeping the generation objects v already has. It takes v.mu.
func (v *Vault) install(h *header, ver backends.Version, keys []*secmem.Buffer) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		destroyAll(keys)
		return ErrClosed
	}
	old := make(map[uint32]*generation, len(v.gens))
	for _, g := range v.gens {
		old[g.n] = g
	}
	gens := make([]*generation, len(h.gens))
	for i, n := range h.gens {
		if g := old[n]; g != nil {
			if subtle.ConstantTimeCompare(g.key.Bytes(), keys[i].Bytes()) != 1 {
				// Two different keys under one generation number:
				// not something this package writes.
				for _, g := range gens[:i] {
					if old[g.n] != g {
						g.destroy()
					}
				}
				destroyAll(keys[i:])
				return &FormatError{Structure: "header", Field: "generation", Reason: fmt.Sprintf("generation %d changed its key", n), Err: ErrCorrupt}
			}
			keys[i].Destroy()
			gens[i] = g
			delete(old, n)
			continue
		}
		gens[i] = newGeneration(n, keys[i], &h.id)
	}
	for _, g := range old {
		g.destroy()
	}
	for id, kek := range v.keks {
		if h.slotByID(id) == nil {
			kek.Destroy()
			delete(v.keks, id)
		}
	}
	v.hdr, v.hdrVer, v.gens = h, ver, gens
	// Raise the highest generation seen (rollback.go); a lower one was
	// refused before (reload) or is this Vault's own restore.
	_ = v.checkGeneration(h.current())
	return nil
}

// current returns the current generation. v.mu must be held.
func (v *Vault) current() *generation { return v.gens[len(v.gens)-1] }

// generation returns generation n, or nil. v.mu must be held.
func (v *Vault) generation(n uint32) *generation {
	for _, g := range v.gens {
		if g.n == n {
			return g
		}
	}
	return nil
}

// reload re-reads the header if its version changed and unlocks it with
// the keys v holds (no argon2id run). Callers that hold the header lock
// see a header no other cooperating writer changes until they let go.
func (v *Vault) reload(ctx context.Context) error {
	blob, ver, err := v.backend.Get(ctx, backends.HeaderName)
	if err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return notFound("vault header", err)
		}
		return fmt.Errorf("vault: read header: %w", err)
	}
	v.mu.RLock()
	closed, same := v.closed, ver == v.hdrVer
	v.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if same {
		return nil
	}
	h, err := parseHeader(blob, v.policy)
	if err != nil {
		return err
	}
	v.mu.RLock()
	sameVault := h.id == v.hdr.id
	v.mu.RUnlock()
	if !sameVault {
		return &FormatError{Structure: "header", Field: "vault id", Reason: "the header now belongs to another vault", Err: ErrCorrupt}
	}
	if err := v.checkGeneration(h.current()); err != nil {
		return err
	}
	keys, id, kek, err := v.unlock(ctx, h, false)
	if err != nil {
		return fmt.Errorf("vault: the header was changed by another process and no longer opens with the keys this Vault holds (open the vault again): %w", err)
	}
	if err := v.install(h, ver, keys); err != nil {
		kek.Destroy()
		return err
	}
	v.mu.Lock()
	if old := v.keks[id]; old != nil {
		old.Destroy()
	}
	v.keks[id] = kek
	v.mu.Unlock()
	return nil
}

// ID returns the vault's id in lowercase hex (32 digits).
func (v *Vault) ID() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return hex.EncodeToString(v.hdr.id[:])
}

// Close wipes every key the Vault holds (data keys, the AEADs' copies of
// session keys, key-encryption keys, the passphrase) and makes every
// later call fail with ErrClosed. It does not close the backend (the
// caller's, or a session.Manager's given both with session.WithOwned). It
// is idempotent and always returns nil.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.closed {
		v.closed = true
		v.wipeLocked()
	}
	return nil
}

// wipe destroys every secret (used when Create fails half-way).
func (v *Vault) wipe() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	v.wipeLocked()
}

func (v *Vault) wipeLocked() {
	for _, g := range v.gens {
		g.destroy()
	}
	v.gens = nil
	for id, k := range v.keks {
		k.Destroy()
		delete(v.keks, id)
	}
	v.pass.Destroy()
	v.pass = nil
}
