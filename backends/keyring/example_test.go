package keyring_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/keyring"
)

// Keep the vault header in the kernel keyring: one backend, named
// explicitly, never a fallback.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kr, err := keyring.Open(ctx, keyring.Config{
		AllowedBackends: []keyring.BackendType{keyring.KeyCtlBackend},
		KeyCtlScope:     "user",
		ServiceName:     "sessionvault",
	})
	if err != nil {
		log.Fatal(err) // matches backends.ErrUnavailable when keyctl is not usable
	}
	b, err := kr.Backend("my-app")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	v, err := b.Put(ctx, backends.HeaderName, []byte("sealed header bytes"), backends.Absent)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Delete(context.Background(), backends.HeaderName, backends.Any)
	fmt.Println("stored, version length:", len(v))
}
