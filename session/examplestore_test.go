package session_test

import (
	"context"

	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// newExampleStore returns the Store of a vault in memory, for examples
// that are about the Manager rather than storage.
func newExampleStore() session.Store {
	v, err := vault.Create(context.Background(), memory.New(), vault.WithPassphrase([]byte("example")), vault.WithInsecureKDFForTesting())
	if err != nil {
		panic(err)
	}
	return v.Store("example")
}
