package vault

import (
	"bytes"
	"context"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
)

// The known-answer vectors added with envelope version 2 (docs/FORMAT.md
// section 9.2), from testdata/kat/reference.py: an envelope v2, a header
// with two generations and a keychain slot only, a session under the
// second generation, and a passphrase slot with p=4.

var katDataKey2 = seqBytes(0x20, 32)

func TestKnownAnswerEnvelopeV2(t *testing.T) {
	vec := katVectors(t)
	aead := newAEAD(katDataKey, &katVaultID, labelSessionSeal, nil)
	got := sealEnvelopeNonce(nil, aead, &katVaultID, 2, 1, 0x0102030405060708, katName, katPlaintext, katNonce)
	if !bytes.Equal(got, vec["session_v2"]) {
		t.Fatalf("session v2\n got %x\nwant %x", got, vec["session_v2"])
	}
	aead2 := newAEAD(katDataKey2, &katVaultID, labelSessionSeal, nil)
	got = sealEnvelopeNonce(nil, aead2, &katVaultID, 2, 2, 7, katName, katPlaintext, katNonce)
	if !bytes.Equal(got, vec["session_v2_gen2"]) {
		t.Fatalf("session v2 gen 2\n got %x\nwant %x", got, vec["session_v2_gen2"])
	}
	env, err := parseEnvelope(katName, append([]byte(nil), vec["session_v2"]...))
	if err != nil || env.version != 2 || env.counter != 0x0102030405060708 || env.gen != 1 {
		t.Fatalf("parse: %+v, %v", env, err)
	}
	if plain, err := openEnvelope(aead, &katVaultID, katName, env); err != nil || !bytes.Equal(plain, katPlaintext) {
		t.Fatalf("open: %q, %v", plain, err)
	}
}

func TestKnownAnswerTwoGenerationsKeychain(t *testing.T) {
	vec := katVectors(t)
	if k := subkey(katDataKey2, &katVaultID, labelHeaderMAC, nil, keySize); !bytes.Equal(k, vec["header_mac_key_gen2"]) {
		t.Fatalf("header MAC key %x", k)
	}
	h := &header{id: katVaultID, gens: []uint32{1, 2}}
	ks := slot{kind: KeychainSlot, id: katKCSlotID}
	wrapSlotNonce(h, &ks, katKCKEK, [][]byte{katDataKey, katDataKey2}, katKCNonce)
	h.slots = []slot{ks}
	h.sign(katDataKey2)
	if got := h.encode(); !bytes.Equal(got, vec["header_two_generations_keychain"]) {
		t.Fatalf("header\n got %x\nwant %x", got, vec["header_two_generations_keychain"])
	}
	// It opens as a vault with the keychain key, and both sessions (one
	// per generation) open under it.
	b := newBackendWith(t, map[string][]byte{
		backends.HeaderName: vec["header_two_generations_keychain"],
		katName:             vec["session_v2_gen2"],
		"kat1":              sealEnvelopeNonce(nil, newAEAD(katDataKey, &katVaultID, labelSessionSeal, nil), &katVaultID, 1, 1, 0, "kat1", katPlaintext, katNonce),
	})
	store := newKeyStore()
	store.keys[account(katVaultID, katKCSlotID)] = katKCKEK
	v, err := Open(context.Background(), b, WithKeyStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if in := v.Info(); len(in.Generations) != 2 || in.Current != 2 {
		t.Fatalf("generations %v", in.Generations)
	}
	for _, n := range []string{katName, "kat1"} {
		if got := open(t, v, n); got != string(katPlaintext) {
			t.Fatalf("%s: %q", n, got)
		}
	}
}

func TestKnownAnswerPassphraseP4(t *testing.T) {
	vec := katVectors(t)
	p4 := kdf.Params{Time: 2, MemoryKiB: 19456, Threads: 4}
	kek, err := kdf.Derive([]byte(katPassphrase), katPSalt[:], p4)
	if err != nil {
		t.Fatal(err)
	}
	defer kek.Destroy()
	if !bytes.Equal(kek.Bytes(), vec["passphrase_kek_p4"]) {
		t.Fatalf("argon2id p=4 KEK %x, want %x", kek.Bytes(), vec["passphrase_kek_p4"])
	}
	h := &header{id: katVaultID, gens: []uint32{1}}
	ps := slot{kind: PassphraseSlot, id: katPSlotID, params: p4, salt: katPSalt}
	wrapSlotNonce(h, &ps, kek.Bytes(), [][]byte{katDataKey}, katPNonce)
	h.slots = []slot{ps}
	h.sign(katDataKey)
	if got := h.encode(); !bytes.Equal(got, vec["header_p4"]) {
		t.Fatalf("header p=4\n got %x\nwant %x", got, vec["header_p4"])
	}
	b := newBackendWith(t, map[string][]byte{backends.HeaderName: vec["header_p4"], katName: vec["session_v2"]})
	v, err := Open(context.Background(), b, WithPassphrase([]byte(katPassphrase)))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := open(t, v, katName); got != string(katPlaintext) {
		t.Fatalf("open: %q", got)
	}
}

// TestKnownAnswerKeychainService: header version 3 (docs/FORMAT.md
// section 9.3), a keychain slot that records the service "sessionvault",
// from testdata/kat/reference.py; it opens with the keychain key and
// reports the service.
func TestKnownAnswerKeychainService(t *testing.T) {
	vec := katVectors(t)
	h := &header{id: katVaultID, gens: []uint32{1}}
	ks := slot{kind: KeychainSlot, id: katKCSlotID, service: "sessionvault"}
	wrapSlotNonce(h, &ks, katKCKEK, [][]byte{katDataKey}, katKCNonce)
	h.slots = []slot{ks}
	h.sign(katDataKey)
	if got := h.encode(); !bytes.Equal(got, vec["header_v3_keychain_service"]) {
		t.Fatalf("header v3\n got %x\nwant %x", got, vec["header_v3_keychain_service"])
	}
	b := newBackendWith(t, map[string][]byte{backends.HeaderName: vec["header_v3_keychain_service"], katName: vec["session_v2"]})
	store := newKeyStore()
	store.keys[account(katVaultID, katKCSlotID)] = katKCKEK
	v, err := Open(context.Background(), b, WithKeyStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if in := v.Info(); in.FormatVersion != 3 || in.Slots[0].Service != "sessionvault" {
		t.Fatalf("info %+v", in)
	}
	if got := open(t, v, katName); got != string(katPlaintext) {
		t.Fatalf("open: %q", got)
	}
}
