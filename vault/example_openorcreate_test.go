package vault_test

import (
	"context"
	"fmt"
	"log"

	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/vault"
)

// OpenOrCreate on a program's first start: it creates the vault, and
// opens it every time after.
func ExampleOpenOrCreate() {
	ctx := context.Background()
	b := memory.New() // file.New(dir) for a real vault
	for range 2 {
		v, created, err := vault.OpenOrCreate(ctx, b,
			vault.WithPassphrase([]byte("correct horse battery staple")),
			vault.WithInsecureKDFForTesting()) // an example: never in production
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("created:", created)
		v.Close()
	}
	// Output:
	// created: true
	// created: false
}
