package retired_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/internal/retired"
	"github.com/sessionvault/sessionvault/vault"
)

// TestScannerFindsAtAnyOffset embeds a real header and a real sealed
// session inside other bytes and checks that the scanner finds each at
// its offset with the credential that opens it, and finds nothing with
// credentials that do not.
func TestScannerFindsAtAnyOffset(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("p")), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Store("s").Seal(ctx, []byte("secret"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := b.Get(ctx, backends.HeaderName)
	env, _, _ := b.Get(ctx, "s")
	keys := retired.HeaderKeys(hdr, []byte("p"))
	if len(keys) != 1 {
		t.Fatalf("HeaderKeys: %d keys", len(keys))
	}
	junk := bytes.Repeat([]byte("SVLT-HDRx"), 3) // magic-like noise that parses to nothing
	blob := append(append(append([]byte(nil), junk...), hdr...), env...)

	rep := retired.New(retired.Credentials{Passphrases: [][]byte{[]byte("p")}, DroppedKeys: keys}).Scan("blob", "s", blob)
	if rep.Headers < 1 || rep.Envelopes != 1 {
		t.Fatalf("found %d headers, %d envelopes", rep.Headers, rep.Envelopes)
	}
	var hdrAt, envAt bool
	for _, f := range rep.Findings {
		hdrAt = hdrAt || f.Offset == len(junk)
		envAt = envAt || f.Offset == len(junk)+len(hdr)
	}
	if !hdrAt || !envAt {
		t.Fatalf("findings %v: want the header at %d and the envelope at %d", rep.Findings, len(junk), len(junk)+len(hdr))
	}
	none := retired.New(retired.Credentials{Passphrases: [][]byte{[]byte("not it")}, DroppedKeys: [][]byte{make([]byte, 32)}}).Scan("blob", "s", blob)
	if len(none.Findings) != 0 {
		t.Fatalf("findings with credentials that open nothing: %v", none.Findings)
	}
	// A live credential opens the header but is not a finding, unless
	// the header wraps a dropped key.
	live := retired.New(retired.Credentials{LivePassphrases: [][]byte{[]byte("p")}, DroppedKeys: keys}).Scan("hdr", "", hdr)
	if len(live.Findings) != 1 {
		t.Fatalf("a header wrapping a dropped key, opened with a live passphrase: %v", live.Findings)
	}
}

// namedKeyStore is an in-memory key store that names a service, so that
// the vault's keychain slot records it (header version 3).
type namedKeyStore struct{ keys map[string][]byte }

func (k *namedKeyStore) GetKey(_ context.Context, a string) ([]byte, error) {
	if v, ok := k.keys[a]; ok {
		return append([]byte(nil), v...), nil
	}
	return nil, backends.ErrNotFound
}
func (k *namedKeyStore) PutKey(_ context.Context, a string, key []byte) error {
	k.keys[a] = append([]byte(nil), key...)
	return nil
}
func (k *namedKeyStore) DeleteKey(_ context.Context, a string) error { delete(k.keys, a); return nil }
func (k *namedKeyStore) Service() string                             { return "sessionvault-retired-test" }

// TestScannerReadsHeaderV3: a header of version 3 (a keychain slot that
// records its service, then a passphrase slot) is read, not skipped: its
// keychain slot opens with the keychain key and its passphrase slot with
// the passphrase, both reported when retired.
func TestScannerReadsHeaderV3(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	ks := &namedKeyStore{keys: map[string][]byte{}}
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("p")), vault.WithKeyStore(ks), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if in := v.Info(); in.FormatVersion != 3 {
		t.Fatalf("format version %d, want 3", in.FormatVersion)
	}
	hdr, _, _ := b.Get(ctx, backends.HeaderName)
	var kek []byte
	for _, k := range ks.keys {
		kek = k
	}
	rep := retired.New(retired.Credentials{Passphrases: [][]byte{[]byte("p")}, KEKs: [][]byte{kek}}).Scan("hdr", "", hdr)
	if rep.Headers != 1 || len(rep.Findings) != 2 {
		t.Fatalf("version 3 header: %d headers, findings %v; want 1 header, 2 findings (keychain and passphrase slots)", rep.Headers, rep.Findings)
	}
}

// TestScannerFindsChunkedEnvelopes: a version 3 (chunked) envelope of
// several chunks, with or without bytes after it, opens with the data
// key it was sealed under and with no other.
func TestScannerFindsChunkedEnvelopes(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("p")), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	hdr, _, _ := b.Get(ctx, backends.HeaderName)
	keys := retired.HeaderKeys(hdr, []byte("p"))
	for _, n := range []int{300 << 10, vault.MaxPlaintextSize} {
		env, err := v.SealSession("s", bytes.Repeat([]byte("x"), n))
		if err != nil {
			t.Fatal(err)
		}
		if env[9] != 3 {
			t.Fatalf("%d bytes: envelope version %d, want 3", n, env[9])
		}
		for _, tail := range [][]byte{nil, make([]byte, 4096)} {
			blob := append(append(append([]byte(nil), hdr...), env...), tail...)
			rep := retired.New(retired.Credentials{DroppedKeys: keys}).Scan("blob", "s", blob)
			if rep.Envelopes != 1 || len(rep.Findings) != 1 || rep.Findings[0].Offset != len(hdr) {
				t.Fatalf("%d bytes, tail %d: %d envelopes, findings %v", n, len(tail), rep.Envelopes, rep.Findings)
			}
			none := retired.New(retired.Credentials{DroppedKeys: [][]byte{make([]byte, 32)}}).Scan("blob", "s", blob)
			if len(none.Findings) != 0 {
				t.Fatalf("findings with a key that opens nothing: %v", none.Findings)
			}
		}
	}
}
