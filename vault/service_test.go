package vault

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
)

func getHeader(t testing.TB, b backends.Backend) []byte {
	t.Helper()
	hdr, _, err := b.Get(context.Background(), backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	return hdr
}

// TestKeychainServiceRecorded: a key store that names its service
// (ServiceNamer) makes a keychain slot that records it: header version 3,
// SlotInfo.Service and Inspect report it, it survives a rotation, and
// removing the slot makes the header version 1 again.
func TestKeychainServiceRecorded(t *testing.T) {
	ctx := context.Background()
	ks := &serviceKeyStore{keyStore: newKeyStore(), service: "sessionvault-test.1"}
	v, b := newVault(t, cheap(testPass, WithKeyStore(ks))...)
	in := v.Info()
	if in.FormatVersion != 3 {
		t.Fatalf("format version %d, want 3", in.FormatVersion)
	}
	kc := in.Slots[0]
	if kc.Kind != KeychainSlot || kc.Service != ks.service {
		t.Fatalf("slot %+v, want a keychain slot recording %q", kc, ks.service)
	}
	seal(t, v, "s", "one")
	if err := v.RotateKey(ctx, nil); err != nil {
		t.Fatal(err)
	}
	ins, err := Inspect(ctx, b, WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	if ins.Slots[0].Service != ks.service || ins.FormatVersion != 3 {
		t.Fatalf("after rotate-key, inspect %+v", ins)
	}
	// Opens with the key store alone, and with the passphrase alone.
	mustOpen(t, b, WithKeyStore(ks), WithInsecureKDFForTesting()).Close()
	mustOpen(t, b, cheap(testPass)...).Close()

	// A plain key store makes a slot that records nothing.
	plain := newKeyStore()
	id, err := v.AddKeychainSlot(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveSlot(ctx, kc.ID); err != nil {
		t.Fatal(err)
	}
	in = v.Info()
	if in.FormatVersion != 1 {
		t.Fatalf("without a named slot: format version %d, want 1", in.FormatVersion)
	}
	for _, s := range in.Slots {
		if s.ID == id && s.Service != "" {
			t.Fatalf("plain key store's slot records %q", s.Service)
		}
	}
	// A key store naming an invalid service is refused before anything
	// is stored.
	bad := &serviceKeyStore{keyStore: newKeyStore(), service: "bad name"}
	if _, err := v.AddKeychainSlot(ctx, bad); err == nil || bad.len() != 0 {
		t.Fatalf("invalid service name: %v (%d keys stored)", err, bad.len())
	}
}

// TestKeychainServiceTampered: the recorded service name is
// authenticated. Changed (checksum recomputed, as an attacker who can
// write the vault folder would), the header does not open with the
// passphrase (the MAC covers it) nor with the right key (the slot's
// wrapping covers it): ErrCorrupt, never a silent open.
func TestKeychainServiceTampered(t *testing.T) {
	ctx := context.Background()
	ks := &serviceKeyStore{keyStore: newKeyStore(), service: "sessionvault"}
	_, b := newVault(t, cheap(testPass, WithKeyStore(ks))...)
	hdr := getHeader(t, b)
	i := bytes.Index(hdr, []byte("sessionvault"))
	if i < 0 {
		t.Fatal("service name not in the header")
	}
	evil := append([]byte(nil), hdr...)
	copy(evil[i:], "sessionvaulx")
	evil = rechecksum(evil)
	if _, err := parseHeader(evil, kdf.InsecurePolicyForTesting); err != nil {
		t.Fatalf("tampered header must still parse (it is well formed): %v", err)
	}
	for name, opts := range map[string][]Option{
		"passphrase":         cheap(testPass),
		"the slot's own key": {WithKeyStore(ks), WithInsecureKDFForTesting()},
	} {
		v, err := Open(ctx, newBackendWith(t, map[string][]byte{backends.HeaderName: evil}), opts...)
		if err == nil {
			v.Close()
		}
		wantErr(t, err, ErrCorrupt, "changed service name, "+name)
	}
}

// TestKeychainServiceMalformed: the structural rules of a service name
// (docs/FORMAT.md section 3.4).
func TestKeychainServiceMalformed(t *testing.T) {
	ks := &serviceKeyStore{keyStore: newKeyStore(), service: "svc"}
	_, b := newVault(t, cheap(testPass, WithKeyStore(ks))...)
	hdr := getHeader(t, b)
	// Layout: 26 bytes of magic, version, id; 1 + 4 generation; 1 slot
	// count; then the keychain slot: kind at 32, id 33..49, length at 49.
	if hdr[32] != kindKeychainService || hdr[49] != 3 || string(hdr[50:53]) != "svc" {
		t.Fatalf("unexpected layout: kind %d, length %d", hdr[32], hdr[49])
	}
	mut := func(f func(b []byte) []byte) []byte {
		return rechecksum(f(append([]byte(nil), hdr...)))
	}
	cases := map[string][]byte{
		"kind 4 in a version 1 header": mut(func(b []byte) []byte { b[9] = 1; return b }),
		"kind 4 in a version 2 header": mut(func(b []byte) []byte { b[9] = 2; return b }),
		"length 0":                     mut(func(b []byte) []byte { b[49] = 0; return b }),
		"length past the end":          mut(func(b []byte) []byte { b[49] = 255; return b }),
		"bad byte":                     mut(func(b []byte) []byte { b[51] = ' '; return b }),
		"NUL byte":                     mut(func(b []byte) []byte { b[51] = 0; return b }),
		"version 3 without a named slot": mut(func(b []byte) []byte {
			// kind 2 and the name cut out: a well-formed version 1 body
			// under a version 3 number.
			b[32] = byte(KeychainSlot)
			return append(b[:49:49], b[53:]...)
		}),
		"version 4": mut(func(b []byte) []byte { b[9] = 4; return b }),
	}
	for name, h := range cases {
		_, err := parseHeader(h, kdf.InsecurePolicyForTesting)
		want := ErrCorrupt
		if strings.HasPrefix(name, "version 4") {
			want = ErrUnsupportedVersion
		}
		wantErr(t, err, want, name)
	}
}

// TestMaxHeaderArithmeticV3: the largest version 3 header (the largest
// version 2 one, its two keychain slots recording 64-byte service names)
// is 7,118 bytes, as limits.go says, under the cap, and parses.
func TestMaxHeaderArithmeticV3(t *testing.T) {
	h := &header{gens: make([]uint32, maxGenerations)}
	for i := range h.gens {
		h.gens[i] = uint32(i + 1)
	}
	wrapped := make([]byte, maxGenerations*keySize+tagSize)
	for i := range maxSlots {
		s := slot{kind: KeychainSlot, wrapped: wrapped, service: strings.Repeat("s", MaxKeychainServiceSize)}
		switch {
		case i < maxPassphraseSlots:
			s.kind, s.service = PassphraseSlot, ""
			s.params = kdf.Default
		case i < maxPassphraseSlots+maxTPMSlots:
			s.kind, s.service = TPMSlot, ""
			s.sealed = make([]byte, MaxSealedKeySize)
		}
		s.id[0] = byte(i)
		h.slots = append(h.slots, s)
	}
	b := h.encode()
	if len(b) != h.size() || len(b) > maxHeaderSize || len(b) != 7118 {
		t.Fatalf("largest v3 header is %d bytes (size() %d), limits.go says 7,118, cap %d", len(b), h.size(), maxHeaderSize)
	}
	if _, err := parseHeader(b, kdf.DefaultPolicy); err != nil {
		t.Fatalf("largest v3 header does not parse: %v", err)
	}
}
