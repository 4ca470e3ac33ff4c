package keychain_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/vault"
)

// Keep a vault's key-encryption key in the OS keychain, and read it back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	kc, err := keychain.New()
	if err != nil {
		log.Fatal(err)
	}
	if err := kc.Probe(ctx); err != nil {
		// No keychain here (no D-Bus session, a locked collection...):
		// fall back to a passphrase slot.
		fmt.Println("no keychain:", errors.Is(err, backends.ErrUnavailable) || errors.Is(err, backends.ErrLocked))
		return
	}
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		log.Fatal(err)
	}
	defer vault.Wipe(kek)
	const account = "example-vault/kek-1"
	if err := kc.PutKey(ctx, account, kek); err != nil {
		log.Fatal(err)
	}
	defer kc.DeleteKey(context.Background(), account)

	got, err := kc.GetKey(ctx, account)
	if err != nil {
		log.Fatal(err)
	}
	defer vault.Wipe(got)
	fmt.Println("key length:", len(got))
}
