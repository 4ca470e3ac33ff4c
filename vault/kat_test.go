package vault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
)

// The known-answer vectors of docs/FORMAT.md. testdata/kat/vectors.txt
// was computed by testdata/kat/reference.py, an independent Python
// implementation of the spec, and by the reference argon2 C code; the Go
// code must reproduce every byte.

func seqBytes(start, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	return b
}

var (
	katVaultID    = [idSize]byte(seqBytes(0x00, 16))
	katDataKey    = seqBytes(0x80, 32)
	katNonce      = seqBytes(0x40, 24)
	katName       = "kat"
	katPlaintext  = []byte(`{"access_token":"kat"}`)
	katKCSlotID   = SlotID(seqBytes(0xA0, 16))
	katKCKEK      = seqBytes(0xC0, 32)
	katKCNonce    = [nonceSize]byte(seqBytes(0x60, 24))
	katPSlotID    = SlotID(seqBytes(0xD0, 16))
	katPSalt      = [saltSize]byte([]byte("sessionvault-kat"))
	katPParams    = kdf.Params{Time: 2, MemoryKiB: 19456, Threads: 1}
	katPNonce     = [nonceSize]byte(seqBytes(0x10, 24))
	katPassphrase = "kat passphrase"
)

func katVectors(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/kat/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, hexed, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(hexed)
		if err != nil {
			t.Fatalf("vectors.txt %s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

// TestVectorsInFormatDoc: every vector appears verbatim in
// docs/FORMAT.md, so the spec and the tests cannot drift apart.
func TestVectorsInFormatDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	for name, v := range katVectors(t) {
		if !strings.Contains(flat, hex.EncodeToString(v)) {
			t.Errorf("docs/FORMAT.md lacks the %s vector", name)
		}
	}
}

func TestKnownAnswerSession(t *testing.T) {
	vec := katVectors(t)
	k := subkey(katDataKey, &katVaultID, labelSessionSeal, nil, keySize)
	if !bytes.Equal(k, vec["session_seal_key"]) {
		t.Fatalf("session seal key %x, want %x", k, vec["session_seal_key"])
	}
	aead := newAEAD(katDataKey, &katVaultID, labelSessionSeal, nil)
	got := sealEnvelopeNonce(nil, aead, &katVaultID, 1, 1, 0, katName, katPlaintext, katNonce)
	if !bytes.Equal(got, vec["session"]) {
		t.Fatalf("session\n got %x\nwant %x", got, vec["session"])
	}
	env, err := parseEnvelope(katName, append([]byte(nil), got...))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := openEnvelope(aead, &katVaultID, katName, env)
	if err != nil || !bytes.Equal(plain, katPlaintext) {
		t.Fatalf("open: %q, %v", plain, err)
	}
}

func TestKnownAnswerHeader(t *testing.T) {
	vec := katVectors(t)
	kek, err := kdf.Derive([]byte(katPassphrase), katPSalt[:], katPParams)
	if err != nil {
		t.Fatal(err)
	}
	defer kek.Destroy()
	if !bytes.Equal(kek.Bytes(), vec["passphrase_kek"]) {
		t.Fatalf("argon2id KEK %x, want %x", kek.Bytes(), vec["passphrase_kek"])
	}
	for _, c := range []struct {
		name string
		got  []byte
	}{
		{"passphrase_slot_wrap_key", subkey(kek.Bytes(), &katVaultID, labelSlotWrap, katPSlotID[:], keySize)},
		{"keychain_slot_wrap_key", subkey(katKCKEK, &katVaultID, labelSlotWrap, katKCSlotID[:], keySize)},
		{"header_mac_key", subkey(katDataKey, &katVaultID, labelHeaderMAC, nil, keySize)},
	} {
		if !bytes.Equal(c.got, vec[c.name]) {
			t.Errorf("%s %x, want %x", c.name, c.got, vec[c.name])
		}
	}
	if c := slotCheck(kek.Bytes(), &katVaultID, katPSlotID); !bytes.Equal(c[:], vec["passphrase_slot_check"]) {
		t.Errorf("passphrase slot check %x", c)
	}
	if c := slotCheck(katKCKEK, &katVaultID, katKCSlotID); !bytes.Equal(c[:], vec["keychain_slot_check"]) {
		t.Errorf("keychain slot check %x", c)
	}

	h := &header{id: katVaultID, gens: []uint32{1}}
	ps := slot{kind: PassphraseSlot, id: katPSlotID, params: katPParams, salt: katPSalt}
	wrapSlotNonce(h, &ps, kek.Bytes(), [][]byte{katDataKey}, katPNonce)
	ks := slot{kind: KeychainSlot, id: katKCSlotID}
	wrapSlotNonce(h, &ks, katKCKEK, [][]byte{katDataKey}, katKCNonce)
	h.slots = []slot{ps, ks}
	h.sign(katDataKey)
	got := h.encode()
	if !bytes.Equal(got, vec["header"]) {
		t.Fatalf("header\n got %x\nwant %x", got, vec["header"])
	}
	parsed, err := parseHeader(vec["header"], kdf.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parsed.encode(), vec["header"]) {
		t.Fatal("parse-then-encode of the vector differs")
	}
}

// TestKnownAnswerVaultOpens opens the vector header and session as a
// vault, with the passphrase (default policy) and with the keychain key.
func TestKnownAnswerVaultOpens(t *testing.T) {
	vec := katVectors(t)
	b := newBackendWith(t, map[string][]byte{backends.HeaderName: vec["header"], katName: vec["session"]})
	ctx := context.Background()
	v, err := Open(ctx, b, WithPassphrase([]byte(katPassphrase)))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.ID() != hex.EncodeToString(katVaultID[:]) {
		t.Fatalf("ID %s", v.ID())
	}
	plain, _, err := v.Store(katName).Open(ctx)
	if err != nil || !bytes.Equal(plain, katPlaintext) {
		t.Fatalf("open: %q, %v", plain, err)
	}
	secmem.Wipe(plain)
	store := newKeyStore()
	store.keys[account(katVaultID, katKCSlotID)] = katKCKEK
	v2, err := Open(ctx, b, WithKeyStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if v2.Info().UnlockedBy != katKCSlotID {
		t.Fatal("not opened by the keychain slot")
	}
	if got := open(t, v2, katName); got != string(katPlaintext) {
		t.Fatalf("keychain open: %q", got)
	}
}
