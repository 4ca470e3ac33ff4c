package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/internal/retired"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// TestRetiredRealKeychain runs the retirement scan with a real Secret
// Service (scripts/with-keyring) and a real file backend: passwd to the
// keychain retires the passphrase, and removing the keychain slot deletes
// its key from the keychain; afterwards nothing in the folder opens with
// either retired credential.
func TestRetiredRealKeychain(t *testing.T) {
	servicetest.Require(t, "SESSIONVAULT_SECRET_SERVICE", "Secret Service", "scripts/with-keyring")
	ctx := context.Background()
	var r [6]byte
	rand.Read(r[:])
	ks, err := keychain.New(keychain.WithService("svtest-retire-" + hex.EncodeToString(r[:])))
	if err != nil {
		t.Fatal(err)
	}
	fb, err := file.New(t.TempDir() + "/vault")
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	v, err := Create(ctx, fb, cheap("old passphrase")...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	seal(t, v, "s", "one")
	seal(t, v, "s", "two")

	// passwd --keychain: a keychain slot added, the passphrase slot removed.
	pp := slotOf(v, PassphraseSlot)
	if _, err := v.AddKeychainSlot(ctx, ks); err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveSlot(ctx, pp); err != nil {
		t.Fatal(err)
	}
	var acct string
	for _, s := range v.Info().Slots {
		acct = s.Account
	}
	kek, err := ks.GetKey(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := retired.New(retired.Credentials{Passphrases: [][]byte{[]byte("old passphrase")}, LiveKEKs: [][]byte{kek}}).ScanDir(fb.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("after passwd --keychain: %s", f)
	}

	// Back to a passphrase: the keychain slot is removed, and its key
	// leaves the keychain.
	if _, err := v.AddPassphraseSlot(ctx, []byte("new passphrase"), cheapParams); err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveSlot(ctx, slotOf(v, KeychainSlot)); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.GetKey(ctx, acct); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("the removed slot's key in the real keychain: %v, want ErrNotFound", err)
	}
	rep, err = retired.New(retired.Credentials{
		Passphrases: [][]byte{[]byte("old passphrase")}, KEKs: [][]byte{kek},
		LivePassphrases: [][]byte{[]byte("new passphrase")},
	}).ScanDir(fb.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("after moving back to a passphrase: %s", f)
	}
	if rep.Headers == 0 || rep.Envelopes == 0 {
		t.Fatalf("scanned %d headers, %d envelopes", rep.Headers, rep.Envelopes)
	}
	t.Logf("%d files, %d headers, %d envelopes, 0 findings", rep.Blobs, rep.Headers, rep.Envelopes)
}
