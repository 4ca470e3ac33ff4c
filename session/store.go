package session

import (
	"context"

	"github.com/sessionvault/sessionvault/backends"
)

// Store keeps one session, sealed, under one name. (*vault.Vault).Store
// returns one; a Manager reads and writes its session only through it.
type Store interface {
	// Name is the session's name in its vault.
	Name() string

	// Open reads and unseals the stored session. It returns the plaintext
	// JSON, which the caller must wipe, and the stored version. A missing
	// session is an error matching backends.ErrNotFound.
	Open(ctx context.Context) (plaintext []byte, v backends.Version, err error)

	// Seal seals plaintext and stores it if the stored version is still
	// ifVersion (see backends.Backend.Put). It does not keep plaintext.
	Seal(ctx context.Context, plaintext []byte, ifVersion backends.Version) (backends.Version, error)

	// Delete removes the stored session if its version is ifVersion.
	Delete(ctx context.Context, ifVersion backends.Version) error

	// Lock takes the cross-process lock for this session (a file lock, or
	// a lease on a distributed backend). Stores whose backend cannot lock
	// return a lock that only excludes this process.
	Lock(ctx context.Context) (backends.Lock, error)
}
