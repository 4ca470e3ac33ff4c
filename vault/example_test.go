package vault_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// A vault's Store is what a session.Manager persists through.
var _ session.Store = (*vault.Store)(nil)

// Create a vault in a folder, seal a session, then open the vault again
// (as the next run of the program would) and read the session back.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vault-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := file.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	passphrase := []byte("correct horse battery staple")
	v, err := vault.Create(ctx, b, vault.WithPassphrase(passphrase), vault.WithKDFParams(kdf.Default))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := v.Store("trader-1").Seal(ctx, []byte(`{"tokens":{"access_token":"eyJ..."}}`), backends.Absent); err != nil {
		log.Fatal(err)
	}
	v.Close() // wipes the keys

	v, err = vault.Open(ctx, b, vault.WithPassphrase(passphrase))
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	vault.Wipe(passphrase) // the vault keeps its own copy until Close

	plaintext, version, err := v.Store("trader-1").Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer vault.Wipe(plaintext)
	fmt.Println(string(plaintext), version != "")
	// Output: {"tokens":{"access_token":"eyJ..."}} true
}

// A wrong passphrase and a damaged vault are different errors.
func ExampleOpen_errors() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "vault-example")
	defer os.RemoveAll(dir)
	b, _ := file.New(dir)
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("right")))
	if err != nil {
		log.Fatal(err)
	}
	v.Close()

	_, err = vault.Open(ctx, b, vault.WithPassphrase([]byte("wrong")))
	fmt.Println("wrong passphrase:", errors.Is(err, vault.ErrWrongKey), errors.Is(err, vault.ErrCorrupt))

	hdr, ver, _ := b.Get(ctx, backends.HeaderName)
	hdr[len(hdr)/2] ^= 0x01 // one flipped bit on disk
	if _, err := b.Put(ctx, backends.HeaderName, hdr, ver); err != nil {
		log.Fatal(err)
	}
	_, err = vault.Open(ctx, b, vault.WithPassphrase([]byte("right")))
	fmt.Println("damaged header:", errors.Is(err, vault.ErrWrongKey), errors.Is(err, vault.ErrCorrupt))
	// Output:
	// wrong passphrase: true false
	// damaged header: false true
}

// RotateKey re-seals every session under a new data key and drops the
// old one; it can be interrupted at any point and run again.
func ExampleVault_RotateKey() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "vault-example")
	defer os.RemoveAll(dir)
	b, _ := file.New(dir)
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("pass")))
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	for _, name := range []string{"alice", "bob"} {
		if _, err := v.Store(name).Seal(ctx, []byte(`{}`), backends.Absent); err != nil {
			log.Fatal(err)
		}
	}
	err = v.RotateKey(ctx, func(done, total int) { fmt.Printf("re-sealed %d/%d\n", done, total) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("generations:", v.Info().Generations)
	// Output:
	// re-sealed 1/2
	// re-sealed 2/2
	// generations: [2]
}

// A bit flipped in the vault header on disk makes Open fail with
// ErrCorrupt; RecoverHeader puts the header's previous generation back
// (the file backend keeps one, and Create writes a spare) once it has
// checked that every session opens under it.
func ExampleRecoverHeader() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vault-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := file.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	passphrase := []byte("correct horse battery staple")
	v, err := vault.Create(ctx, b, vault.WithPassphrase(passphrase), vault.WithKDFParams(kdf.Default))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := v.Store("trader-1").Seal(ctx, []byte(`{"tokens":{}}`), backends.Absent); err != nil {
		log.Fatal(err)
	}
	v.Close()

	// Damage that reaches the vault: a header stored with a flipped bit
	// (damage the disk does to a stored file is caught by the file
	// backend's own checksums, which read the generation before it).
	hdr, _, _ := b.Get(ctx, backends.HeaderName)
	hdr[40] ^= 0x08
	b.Put(ctx, backends.HeaderName, hdr, backends.Any)
	_, err = vault.Open(ctx, b, vault.WithPassphrase(passphrase))
	fmt.Println("open:", errors.Is(err, vault.ErrCorrupt))

	v, report, err := vault.RecoverHeader(ctx, b, false, vault.WithPassphrase(passphrase))
	if err != nil {
		log.Fatal(err) // a *vault.HeaderRecoveryError lists sessions that would not open
	}
	defer v.Close()
	vault.Wipe(passphrase)
	fmt.Println("restored:", report.Restored, "sessions checked:", report.Sessions)
	// Output:
	// open: true
	// restored: true sessions checked: 1
}
