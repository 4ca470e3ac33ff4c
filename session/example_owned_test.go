package session_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// The whole stack (backend, vault, Manager) with one Close: WithOwned
// hands the vault and the backend to the Manager, whose Close flushes the
// session, wipes it, then closes the vault (wiping its keys) and the
// backend. Until NewManager succeeds they are still the caller's.
func ExampleWithOwned() {
	dir, err := os.MkdirTemp("", "sessionvault-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	backend, err := file.New(filepath.Join(dir, "vault"))
	if err != nil {
		log.Fatal(err)
	}
	v, created, err := vault.OpenOrCreate(ctx, backend,
		vault.WithPassphrase([]byte("correct horse battery staple")),
		vault.WithInsecureKDFForTesting()) // an example: never in production
	if err != nil {
		backend.Close()
		log.Fatal(err)
	}
	m, err := session.NewManager(ctx, v.Store("trading"), session.WithOwned(v, backend))
	if err != nil {
		v.Close()
		backend.Close()
		log.Fatal(err)
	}
	fmt.Println("created:", created, "has session:", m.HasSession())
	if err := m.Close(ctx); err != nil { // the one Close
		log.Fatal(err)
	}
	_, _, err = backend.Get(ctx, "trading")
	fmt.Println("backend closed:", err != nil)
	// Output:
	// created: true has session: false
	// backend closed: true
}
