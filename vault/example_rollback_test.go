package vault_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// Keep the vault's rollback record outside the vault folder, so that a
// restarted program refuses a session put back to an older copy.
func ExampleWithFreshnessFile() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "vault-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	dir := filepath.Join(root, "vault")
	fresh := filepath.Join(root, "freshness.json") // elsewhere in real use: a path the vault's writers cannot write
	b, err := file.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	opts := []vault.Option{vault.WithPassphrase([]byte("correct horse battery staple")), vault.WithKDFParams(kdf.Floor), vault.WithFreshnessFile(fresh)}
	v, err := vault.Create(ctx, b, opts...)
	if err != nil {
		log.Fatal(err)
	}
	s := v.Store("trader-1")
	if _, err := s.Seal(ctx, []byte(`{"tokens":{"access_token":"old"}}`), backends.Absent); err != nil {
		log.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(dir, "sessions", "trader-1.sealed"))
	if _, err := s.Seal(ctx, []byte(`{"tokens":{"access_token":"new"}}`), backends.Any); err != nil {
		log.Fatal(err)
	}
	v.Close()

	// Someone puts the older blob back; the next run notices.
	if err := os.WriteFile(filepath.Join(dir, "sessions", "trader-1.sealed"), old, 0o600); err != nil {
		log.Fatal(err)
	}
	v, err = vault.Open(ctx, b, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	_, _, err = v.Store("trader-1").Open(ctx)
	fmt.Println(errors.Is(err, vault.ErrRollback))
	// Output: true
}
