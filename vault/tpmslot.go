package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// KEKSealer seals a vault's key-encryption key to a device, so that the
// key exists outside the device only sealed: package tpm implements it
// for a TPM2. A TPM slot holds what Seal returns; Open gives it back to
// Unseal. The vault never stores the key itself.
//
// Implementations must be safe for concurrent use and honour ctx (a
// device that does not answer must not hang Open).
type KEKSealer interface {
	// Seal returns kek (32 bytes) sealed to the device: bytes that
	// reveal nothing of kek without the device, at most MaxSealedKeySize
	// long. It must not keep kek or a copy of it.
	Seal(ctx context.Context, kek []byte) (sealed []byte, err error)
	// Unseal returns the key that Seal sealed into sealed; the caller
	// wipes it. The bytes come from the vault header, which anyone who
	// can write the vault folder may have changed: Unseal must check
	// them. When the device works but will not give the key (it is
	// another device, or its state no longer matches what the key was
	// sealed to), the error should match ErrWrongKey, so that Open
	// reports a wrong key rather than a broken device.
	Unseal(ctx context.Context, sealed []byte) (kek []byte, err error)
}

// slotAADVersion is the version field of every slot's additional data
// (slotAAD), in header versions 1 and 2 alike: version 2 changed no slot
// wrapping, and keeping the field lets a TPM slot be added to a version 1
// header without re-wrapping its other slots.
const slotAADVersion = 1

// version returns the format version of h's encoding: 2 when it holds a
// TPM slot, else 1, so that vaults without one stay readable by every
// version 1 reader.
func (h *header) version() uint16 {
	for i := range h.slots {
		if h.slots[i].kind == KeychainSlot && h.slots[i].service != "" {
			return headerVersionService
		}
	}
	if h.countKind(TPMSlot) > 0 {
		return headerVersionTPM
	}
	return formatVersion
}

// readSealed reads a TPM slot's length-prefixed sealed key.
func readSealed(r *reader, field string) ([]byte, error) {
	p := r.take(2, field+" length")
	if r.err != nil {
		return nil, r.err
	}
	n := int(p[0])<<8 | int(p[1])
	if n == 0 || n > MaxSealedKeySize {
		return nil, corruptHeader(field+" length", fmt.Sprintf("%d, want 1 to %d", n, MaxSealedKeySize))
	}
	b := r.take(n, field)
	if r.err != nil {
		return nil, r.err
	}
	return append([]byte(nil), b...), nil
}

// WithTPM gives the vault a KEKSealer (package tpm's Sealer for a TPM2).
// Create adds a TPM slot: a fresh random key-encryption key, sealed with
// it. Open tries the vault's TPM slots with it after any keychain slot
// and before any passphrase, so a TPM that is gone, wiped or in another
// state falls back to the passphrase.
func WithTPM(s KEKSealer) Option {
	return func(c *config) { c.sealer = s }
}

// AddTPMSlot adds a TPM slot to the vault: a fresh random key-encryption
// key sealed with s. It returns the slot's id. The Vault uses s for this
// slot from then on (for RotateKey).
func (v *Vault) AddTPMSlot(ctx context.Context, s KEKSealer) (SlotID, error) {
	if s == nil {
		return SlotID{}, errors.New("vault: AddTPMSlot: nil sealer")
	}
	if err := v.checkOpen(); err != nil {
		return SlotID{}, err
	}
	kek, sealed, err := sealNewKEK(ctx, s)
	if err != nil {
		return SlotID{}, err
	}
	defer kek.Destroy()
	var id SlotID
	err = v.updateHeader(ctx, func(h *header, keys [][]byte) (map[SlotID]*secmem.Buffer, map[uint32]*secmem.Buffer, error) {
		if err := checkRoom(h, TPMSlot); err != nil {
			return nil, nil, err
		}
		sl := slot{kind: TPMSlot, id: newSlotID(h), sealed: append([]byte(nil), sealed...)}
		wrapSlot(h, &sl, kek.Bytes(), keys)
		h.slots = append(h.slots, sl)
		id = sl.id
		keep := secmem.New(keySize)
		copy(keep.Bytes(), kek.Bytes())
		return map[SlotID]*secmem.Buffer{sl.id: keep}, nil, nil
	})
	if err != nil {
		return SlotID{}, err
	}
	v.mu.Lock()
	if v.sealer == nil {
		v.sealer = s
	}
	v.mu.Unlock()
	return id, nil
}

// sealNewKEK makes a random key-encryption key and seals it with s.
func sealNewKEK(ctx context.Context, s KEKSealer) (*secmem.Buffer, []byte, error) {
	kek := secmem.New(keySize)
	rand.Read(kek.Bytes())
	kctx, cancel := keyStoreCtx(ctx)
	defer cancel()
	sealed, err := s.Seal(kctx, kek.Bytes())
	if err == nil && (len(sealed) == 0 || len(sealed) > MaxSealedKeySize) {
		err = fmt.Errorf("vault: the sealer returned %d bytes, want 1 to %d", len(sealed), MaxSealedKeySize)
	}
	if err != nil {
		kek.Destroy()
		return nil, nil, fmt.Errorf("vault: new TPM slot: sealing its key failed: %w", err)
	}
	return kek, sealed, nil
}

// newTPMSlot makes a TPM slot for h with a fresh KEK sealed by s,
// wrapping keys. It returns the slot and its KEK.
func newTPMSlot(ctx context.Context, h *header, keys [][]byte, s KEKSealer) (slot, *secmem.Buffer, error) {
	kek, sealed, err := sealNewKEK(ctx, s)
	if err != nil {
		return slot{}, nil, err
	}
	sl := slot{kind: TPMSlot, id: newSlotID(h), sealed: sealed}
	wrapSlot(h, &sl, kek.Bytes(), keys)
	return sl, kek, nil
}

// unsealKEK asks s for a TPM slot's KEK.
func unsealKEK(ctx context.Context, s KEKSealer, sl *slot) (*secmem.Buffer, error) {
	kctx, cancel := keyStoreCtx(ctx)
	defer cancel()
	raw, err := s.Unseal(kctx, sl.sealed)
	if err != nil {
		return nil, &SlotError{Slot: sl.id, Kind: TPMSlot, Reason: "the sealer could not unseal the key", Err: err}
	}
	if len(raw) != keySize {
		secmem.Wipe(raw)
		return nil, &SlotError{Slot: sl.id, Kind: TPMSlot, Reason: fmt.Sprintf("the sealer returned %d bytes, want %d", len(raw), keySize), Err: ErrWrongKey}
	}
	return secmem.From(raw), nil
}
