package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
)

// Inspect reads the vault header in b without unlocking it and describes
// it: its id, format version, generations and key slots (kinds, KDF
// parameters, keychain accounts, TPM slots' sealed keys), so that a
// caller can tell which key sources open the vault before asking for
// one. Nothing in it is verified by a key: the header MAC needs a data
// key, so a header that someone rewrote describes what they wrote (Open
// then refuses it). UnlockedBy is zero and KeysLocked false. opts may
// set the KDF policy (WithKDFPolicy, WithInsecureKDFForTesting); other
// options are ignored. Errors are those of Open before any unlock:
// ErrNotFound, ErrCorrupt, ErrUnsupportedVersion, ErrTooLarge, ErrPolicy.
func Inspect(ctx context.Context, b backends.Backend, opts ...Option) (Info, error) {
	c := newConfig(opts)
	c.pass.Destroy()
	blob, _, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return Info{}, notFound("vault header", err)
		}
		return Info{}, fmt.Errorf("vault: inspect: read header: %w", err)
	}
	h, err := parseHeader(blob, c.policy)
	if err != nil {
		return Info{}, err
	}
	in := Info{
		ID:            hex.EncodeToString(h.id[:]),
		FormatVersion: int(h.version()),
		Generations:   append([]uint32(nil), h.gens...),
		Current:       h.current(),
		Rotating:      len(h.gens) > 1,
	}
	for _, s := range h.slots {
		in.Slots = append(in.Slots, slotInfo(h, &s))
	}
	return in, nil
}

// slotInfo describes slot s of h.
func slotInfo(h *header, s *slot) SlotInfo {
	si := SlotInfo{ID: s.id, Kind: s.kind}
	switch s.kind {
	case PassphraseSlot:
		si.KDF = s.params
	case KeychainSlot:
		si.Account = account(h.id, s.id)
		si.Service = s.service
	case TPMSlot:
		si.Sealed = append([]byte(nil), s.sealed...)
	}
	return si
}
