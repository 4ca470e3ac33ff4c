package memory_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/vault"
)

// A KeyStore stands in for the OS keychain in tests of code that takes a
// backends.KeyStore: here a vault with a keychain slot and a passphrase
// slot, all in memory. The key store alone opens it; a key store without
// the entry is vault.ErrWrongKey joined with backends.ErrNotFound (not
// vault.ErrNotFound, which means "no vault"), and with the passphrase
// given too, Open falls back to it.
func ExampleKeyStore() {
	ctx := context.Background()
	b := memory.New()
	ks := memory.NewKeyStore()
	pass := []byte("recovery passphrase")
	cheap := vault.WithInsecureKDFForTesting() // tests only: never in production

	v, err := vault.Create(ctx, b, vault.WithKeyStore(ks), vault.WithPassphrase(pass), cheap)
	if err != nil {
		log.Fatal(err)
	}
	v.Close()

	v, err = vault.Open(ctx, b, vault.WithKeyStore(ks), cheap)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("opened by:", unlockedBy(v))
	v.Close()

	empty := memory.NewKeyStore() // a keychain that lost the entry
	_, err = vault.Open(ctx, b, vault.WithKeyStore(empty), cheap)
	fmt.Println("missing entry:", errors.Is(err, vault.ErrWrongKey), errors.Is(err, backends.ErrNotFound),
		errors.Is(err, vault.ErrNotFound))

	v, err = vault.Open(ctx, b, vault.WithKeyStore(empty), vault.WithPassphrase(pass), cheap)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fell back to:", unlockedBy(v))
	v.Close()
	vault.Wipe(pass)
	// Output:
	// opened by: keychain
	// missing entry: true true false
	// fell back to: passphrase
}

// unlockedBy returns the kind of the slot that opened v.
func unlockedBy(v *vault.Vault) vault.SlotKind {
	in := v.Info()
	for _, s := range in.Slots {
		if s.ID == in.UnlockedBy {
			return s.Kind
		}
	}
	return 0
}
