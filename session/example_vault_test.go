package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// This is the README's example, run against a real file-backed vault in a
// temporary folder: create a vault protected by a passphrase, keep a
// session in it with auto-save, print its summary, and build an HTTP
// client that attaches it. The one addition is the test-only option that
// makes the passphrase's key derivation cheap; a program leaves it out
// (the default argon2id costs about 64 MiB and a few tens of
// milliseconds, once per unlock).
func ExampleManager_vault() {
	dir, err := os.MkdirTemp("", "sessionvault-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	passphrase := []byte("correct horse battery staple")
	access := []byte("eyJhbGciOiJIUzI1NiJ9.ZXhhbXBsZSBhY2Nlc3M.c2ln")
	refresh := []byte("eyJhbGciOiJIUzI1NiJ9.ZXhhbXBsZSByZWZyZXNo.c2ln")
	defer clear(passphrase)
	defer clear(access)
	defer clear(refresh)

	if err := readmeExample(dir, passphrase, access, refresh); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// Session: INVALID | Tokens: VALID | Cookies: MISSING | Turnkey: NOT_SET | Age: 0m | Last API: NEVER
	// plain http refused: true
	// reopened: Session: INVALID | Tokens: VALID | Cookies: MISSING | Turnkey: NOT_SET | Age: 0m | Last API: NEVER
}

func readmeExample(dir string, passphrase, access, refresh []byte) error {
	// The README's lines, in order.
	ctx := context.Background()
	backend, err := file.New(filepath.Join(dir, "vault")) // 0700 folder, atomic 0600 files
	if err != nil {
		return err
	}
	defer backend.Close()
	v, err := vault.Create(ctx, backend, vault.WithPassphrase(passphrase),
		vault.WithInsecureKDFForTesting()) // tests only: leave it out in a program
	if err != nil {
		return err // vault.Open(...) next time
	}
	defer v.Close() // wipes the data keys

	m, err := session.NewManager(ctx, v.Store("trading"), session.WithAutoSave(true))
	if err != nil {
		return err // a damaged store is an error, never a fresh start
	}
	defer m.Close(ctx) // flushes metadata, then wipes secrets

	expires := time.Now().Add(time.Hour)
	tokens := session.NewAuthTokens(access, refresh, &expires) // copies; wipe your own buffers
	defer tokens.Destroy()
	if err := m.CreateSession(ctx, tokens, nil, nil); err != nil {
		return err // durable on return
	}
	fmt.Println(m.Summary())

	client := &http.Client{Transport: session.NewTransport(m, http.DefaultTransport)} // adds auth to https only

	// Beyond the README: credentials never go over plain http (the
	// request fails before any connection), and the session is stored:
	// a second vault handle opens it.
	_, err = client.Get("http://api.example.invalid/")
	fmt.Println("plain http refused:", errors.Is(err, session.ErrInsecureURL))

	v2, err := vault.Open(ctx, backend, vault.WithPassphrase(passphrase), vault.WithInsecureKDFForTesting())
	if err != nil {
		return err
	}
	defer v2.Close()
	m2, err := session.NewManager(ctx, v2.Store("trading"))
	if err != nil {
		return err
	}
	defer m2.Close(ctx)
	fmt.Println("reopened:", m2.Summary())
	return nil
}
