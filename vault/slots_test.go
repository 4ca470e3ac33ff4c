package vault

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
)

var testParams = kdf.Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestKeychainSlot(t *testing.T) {
	ctx := context.Background()
	ks := newKeyStore()
	v, b := newVault(t, cheap(testPass, WithKeyStore(ks))...)
	seal(t, v, "a", "x")
	in := v.Info()
	if len(in.Slots) != 2 || in.Slots[0].Kind != KeychainSlot || in.Slots[1].Kind != PassphraseSlot {
		t.Fatalf("slots %+v", in.Slots)
	}
	if in.Slots[0].Account != v.ID()+"/"+in.Slots[0].ID.String() || ks.len() != 1 {
		t.Fatalf("keychain account %q, %d keys stored", in.Slots[0].Account, ks.len())
	}
	if in.Slots[1].KDF != testParams {
		t.Fatalf("passphrase slot params %v", in.Slots[1].KDF)
	}

	// The keychain alone opens the vault, with no argon2id run.
	before := kdf.Derivations()
	v2 := mustOpen(t, b, WithKeyStore(ks), WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if kdf.Derivations() != before {
		t.Fatal("opening with the keychain ran argon2id")
	}
	if open(t, v2, "a") != "x" || v2.Info().UnlockedBy != in.Slots[0].ID {
		t.Fatal("keychain open")
	}
	// The passphrase alone opens it too (losing the keychain loses
	// nothing).
	mustOpen(t, b, cheap(testPass)...)

	// An unavailable keychain falls back to the passphrase...
	down := newKeyStore()
	down.fail = backends.ErrUnavailable
	mustOpen(t, b, cheap(testPass, WithKeyStore(down))...)
	// ...and without one reports the keychain's error.
	_, err := Open(ctx, b, WithKeyStore(down), WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if !errors.Is(err, backends.ErrUnavailable) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("keychain unavailable: %v", err)
	}
	// A keychain without the key is a wrong key.
	_, err = Open(ctx, b, WithKeyStore(newKeyStore()), WithKDFPolicy(kdf.InsecurePolicyForTesting))
	wantErr(t, err, ErrWrongKey, "empty keychain")
	// Another key under the account is a wrong key, not corruption.
	other := newKeyStore()
	other.keys[in.Slots[0].Account] = bytes.Repeat([]byte{7}, 32)
	_, err = Open(ctx, b, WithKeyStore(other), WithKDFPolicy(kdf.InsecurePolicyForTesting))
	wantErr(t, err, ErrWrongKey, "wrong keychain key")
	// Nothing given at all.
	_, err = Open(ctx, b)
	wantErr(t, err, ErrWrongKey, "no credentials")

	// Removing the keychain slot deletes its key.
	if err := v.RemoveSlot(ctx, in.Slots[0].ID); err != nil {
		t.Fatal(err)
	}
	if ks.len() != 0 {
		t.Fatal("RemoveSlot left the key in the key store")
	}
	_, err = Open(ctx, b, WithKeyStore(ks), WithKDFPolicy(kdf.InsecurePolicyForTesting))
	wantErr(t, err, ErrWrongKey, "removed keychain slot")
	if err := v.RemoveSlot(ctx, in.Slots[1].ID); !errors.Is(err, ErrLastSlot) {
		t.Fatalf("removing the last slot: %v", err)
	}
	if err := v.RemoveSlot(ctx, SlotID{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing a missing slot: %v", err)
	}
}

func TestKeychainOnlyVault(t *testing.T) {
	ks := newKeyStore()
	v, b := newVault(t, WithKeyStore(ks))
	seal(t, v, "a", "x")
	v2 := mustOpen(t, b, WithKeyStore(ks))
	if open(t, v2, "a") != "x" {
		t.Fatal("open")
	}
	// A failing keychain at Create leaves nothing behind.
	bad := newKeyStore()
	bad.fail = backends.ErrLocked
	b3, _ := newMemory()
	if _, err := Create(context.Background(), b3, WithKeyStore(bad)); !errors.Is(err, backends.ErrLocked) {
		t.Fatalf("Create with a locked keychain: %v", err)
	}
	if _, _, err := b3.Get(context.Background(), backends.HeaderName); !errors.Is(err, backends.ErrNotFound) {
		t.Fatal("failed Create wrote a header")
	}
}

func TestChangePassphrase(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	seal(t, v, "a", "x")
	blobBefore, _, _ := b.Get(ctx, "a")
	slotBefore := v.Info().Slots[0].ID
	if err := v.ChangePassphrase(ctx, []byte("new passphrase"), testParams); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, b, cheap(testPass)...)
	wantErr(t, err, ErrWrongKey, "old passphrase after change")
	v2 := mustOpen(t, b, cheap("new passphrase")...)
	if open(t, v2, "a") != "x" {
		t.Fatal("open after change")
	}
	blobAfter, _, _ := b.Get(ctx, "a")
	if !bytes.Equal(blobBefore, blobAfter) {
		t.Fatal("ChangePassphrase rewrote a session")
	}
	if id := v2.Info().Slots[0].ID; id != slotBefore {
		t.Fatalf("slot id changed: %v -> %v", slotBefore, id)
	}
	// Out-of-policy or empty passphrases change nothing.
	hdr, _, _ := b.Get(ctx, backends.HeaderName)
	if err := v2.ChangePassphrase(ctx, []byte("p"), kdf.Params{Time: 1 << 20, MemoryKiB: 64, Threads: 1}); !errors.Is(err, ErrPolicy) {
		t.Fatalf("ChangePassphrase above the ceiling: %v", err)
	}
	if err := v2.ChangePassphrase(ctx, nil, testParams); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	if hdr2, _, _ := b.Get(ctx, backends.HeaderName); !bytes.Equal(hdr, hdr2) {
		t.Fatal("a refused ChangePassphrase wrote the header")
	}
	// The first Vault, whose header copy is stale, keeps working.
	seal(t, v, "b", "y")
	if open(t, v2, "b") != "y" {
		t.Fatal("stale Vault's seal")
	}
}

func TestAddPassphraseSlot(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	seal(t, v, "a", "x")
	id, err := v.AddPassphraseSlot(ctx, []byte("recovery"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	v2 := mustOpen(t, b, cheap("recovery")...)
	if open(t, v2, "a") != "x" || v2.Info().UnlockedBy != id {
		t.Fatal("second passphrase")
	}
	mustOpen(t, b, cheap(testPass)...)
	for range maxPassphraseSlots - 2 {
		if _, err := v.AddPassphraseSlot(ctx, []byte("more"), testParams); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.AddPassphraseSlot(ctx, []byte("one too many"), testParams); err == nil {
		t.Fatal("a fifth passphrase slot was added")
	}
	// ChangePassphrase through a vault opened by the keychain is
	// ambiguous with several passphrase slots.
}

func TestAddKeychainSlotLater(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	seal(t, v, "a", "x")
	ks := newKeyStore()
	if _, err := v.AddKeychainSlot(ctx, ks); err != nil {
		t.Fatal(err)
	}
	v2 := mustOpen(t, b, WithKeyStore(ks), WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if open(t, v2, "a") != "x" {
		t.Fatal("open via added keychain slot")
	}
	bad := newKeyStore()
	bad.fail = backends.ErrUnavailable
	if _, err := v.AddKeychainSlot(ctx, bad); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("AddKeychainSlot with a failing store: %v", err)
	}
	if n := len(v.Info().Slots); n != 2 {
		t.Fatalf("%d slots after a failed add", n)
	}
}
