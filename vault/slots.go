package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
)

// ChangePassphrase replaces the vault's passphrase slot with one for
// newPassphrase, derived with params (checked against the KDF policy
// first). It rewrites the header only: sessions are not touched. The slot
// keeps its id.
//
// The slot changed is the one that unlocked this Vault, or else the
// vault's only passphrase slot. Since the Vault is open, the current
// passphrase (or a keychain key) was already proven; a wrong one fails
// Open and changes nothing. Other processes that have the vault open keep
// working with the keys they hold; one that later needs to re-read the
// header through the changed slot must be opened again.
func (v *Vault) ChangePassphrase(ctx context.Context, newPassphrase []byte, params kdf.Params) error {
	if len(newPassphrase) == 0 {
		return errEmptyPassphrase
	}
	if err := v.policy.Check(params); err != nil {
		return &PolicyError{Err: err}
	}
	pass := secmem.New(len(newPassphrase))
	copy(pass.Bytes(), newPassphrase)
	err := v.updateHeader(ctx, func(h *header, keys [][]byte) (map[SlotID]*secmem.Buffer, map[uint32]*secmem.Buffer, error) {
		target := v.passphraseSlotToChange(h)
		if target == nil {
			return nil, nil, errors.New("vault: the vault has no passphrase slot to change (use AddPassphraseSlot), or several and it was not unlocked with one of them")
		}
		if err := checkBudget(v.policy, passphraseParams(h, target, params)); err != nil {
			return nil, nil, err
		}
		s, kek, err := newPassphraseSlot(h, keys, v.policy, pass.Bytes(), params)
		if err != nil {
			return nil, nil, err
		}
		// Keep the slot's id: re-wrap under it.
		s.id = target.id
		wrapSlot(h, &s, kek.Bytes(), keys)
		*target = s
		return map[SlotID]*secmem.Buffer{s.id: kek}, nil, nil
	})
	if err != nil {
		pass.Destroy()
		return err
	}
	// Remember the new passphrase, for RotateKey.
	v.mu.Lock()
	v.pass.Destroy()
	v.pass = pass
	v.mu.Unlock()
	return nil
}

// passphraseSlotToChange picks the slot ChangePassphrase replaces. v.mu
// is held (read).
func (v *Vault) passphraseSlotToChange(h *header) *slot {
	if s := h.slotByID(v.unlockedBy); s != nil && s.kind == PassphraseSlot {
		return s
	}
	var only *slot
	for i := range h.slots {
		if h.slots[i].kind == PassphraseSlot {
			if only != nil {
				return nil
			}
			only = &h.slots[i]
		}
	}
	return only
}

// AddPassphraseSlot adds a passphrase slot for passphrase, derived with
// params (checked against the KDF policy first), and returns its id.
func (v *Vault) AddPassphraseSlot(ctx context.Context, passphrase []byte, params kdf.Params) (SlotID, error) {
	if len(passphrase) == 0 {
		return SlotID{}, errEmptyPassphrase
	}
	if err := v.policy.Check(params); err != nil {
		return SlotID{}, &PolicyError{Err: err}
	}
	var id SlotID
	err := v.updateHeader(ctx, func(h *header, keys [][]byte) (map[SlotID]*secmem.Buffer, map[uint32]*secmem.Buffer, error) {
		if err := checkRoom(h, PassphraseSlot); err != nil {
			return nil, nil, err
		}
		if err := checkBudget(v.policy, passphraseParams(h, nil, params)); err != nil {
			return nil, nil, err
		}
		s, kek, err := newPassphraseSlot(h, keys, v.policy, passphrase, params)
		if err != nil {
			return nil, nil, err
		}
		h.slots = append(h.slots, s)
		id = s.id
		return map[SlotID]*secmem.Buffer{s.id: kek}, nil, nil
	})
	return id, err
}

// AddKeychainSlot adds a keychain slot: a fresh random key-encryption key
// stored in ks (under the account "<vault id>/<slot id>"). It returns the
// slot's id. If the header cannot be written, the key is removed from ks
// again. The Vault uses ks for this slot from then on (for RotateKey).
func (v *Vault) AddKeychainSlot(ctx context.Context, ks backends.KeyStore) (SlotID, error) {
	if ks == nil {
		return SlotID{}, errors.New("vault: AddKeychainSlot: nil key store")
	}
	var (
		id     SlotID
		stored []string
	)
	err := v.updateHeader(ctx, func(h *header, keys [][]byte) (map[SlotID]*secmem.Buffer, map[uint32]*secmem.Buffer, error) {
		if err := checkRoom(h, KeychainSlot); err != nil {
			return nil, nil, err
		}
		s, kek, err := newKeychainSlot(ctx, h, keys, ks)
		if err != nil {
			return nil, nil, err
		}
		stored = append(stored, account(h.id, s.id))
		h.slots = append(h.slots, s)
		id = s.id
		return map[SlotID]*secmem.Buffer{s.id: kek}, nil, nil
	})
	// Remove keys stored for attempts that did not land.
	for _, a := range stored {
		if err == nil && a == account(v.hdrID(), id) {
			continue
		}
		kctx, cancel := keyStoreCtx(context.WithoutCancel(ctx))
		_ = ks.DeleteKey(kctx, a)
		cancel()
	}
	if err != nil {
		return SlotID{}, err
	}
	v.mu.Lock()
	if v.keyStore == nil {
		v.keyStore = ks
	}
	v.mu.Unlock()
	return id, nil
}

func (v *Vault) hdrID() [idSize]byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.hdr.id
}

// checkRoom refuses a slot beyond the format's caps.
func checkRoom(h *header, kind SlotKind) error {
	if len(h.slots) >= maxSlots {
		return fmt.Errorf("vault: the vault has %d key slots, the most format v1 allows", maxSlots)
	}
	if kind == PassphraseSlot && h.countKind(PassphraseSlot) >= maxPassphraseSlots {
		return fmt.Errorf("vault: the vault has %d passphrase slots, the most format v1 allows", maxPassphraseSlots)
	}
	if kind == TPMSlot && h.countKind(TPMSlot) >= maxTPMSlots {
		return fmt.Errorf("vault: the vault has %d TPM slots, the most format v2 allows", maxTPMSlots)
	}
	return nil
}

// RemoveSlot removes the key slot id from the header. It refuses to
// remove the last slot (ErrLastSlot). For a keychain slot it then deletes
// the key from the Vault's key store, best effort: the header no longer
// references it either way.
func (v *Vault) RemoveSlot(ctx context.Context, id SlotID) error {
	var removed slot
	err := v.updateHeader(ctx, func(h *header, keys [][]byte) (map[SlotID]*secmem.Buffer, map[uint32]*secmem.Buffer, error) {
		i := -1
		for j := range h.slots {
			if h.slots[j].id == id {
				i = j
			}
		}
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: key slot %s", ErrNotFound, id)
		}
		if len(h.slots) == 1 {
			return nil, nil, ErrLastSlot
		}
		removed = h.slots[i]
		h.slots = append(h.slots[:i], h.slots[i+1:]...)
		return nil, nil, nil
	})
	if err != nil {
		return err
	}
	v.mu.RLock()
	ks, vid := v.keyStore, v.hdr.id
	v.mu.RUnlock()
	if removed.kind == KeychainSlot && ks != nil {
		kctx, cancel := keyStoreCtx(ctx)
		defer cancel()
		if err := ks.DeleteKey(kctx, account(vid, removed.id)); err != nil && !errors.Is(err, backends.ErrNotFound) {
			return fmt.Errorf("vault: slot %s removed, but its key is still in the key store: %w", id, err)
		}
	}
	return nil
}
