// Package backends defines where a vault keeps its bytes: a Backend stores
// named, versioned blobs (the vault header and one sealed blob per session),
// and a KeyStore holds key-encryption keys in an OS keychain.
//
// Backends only ever see sealed bytes and key-encryption keys; they never
// see a session in plaintext. Every backend in this module passes the
// conformance suite in package backendtest.
package backends

import (
	"context"
	"errors"
)

// Version identifies one stored state of a blob (an etag or generation).
// It is opaque: compare it only for equality, and only with versions from
// the same backend and name.
type Version string

const (
	// Absent, as the ifVersion of Put, means "only if no blob by that name
	// exists". It is the zero Version, so a forgotten version fails safe.
	Absent Version = ""
	// Any, as the ifVersion of Put or Delete, means "whatever is stored".
	Any Version = "*"
)

// HeaderName is the reserved name under which a vault keeps its header.
// ValidateName refuses every other name that starts with a dot, so no
// session can collide with it.
const HeaderName = ".vault"

// Backend stores named blobs, each with a Version, so that a write based on
// a stale read fails instead of overwriting a newer one.
//
// Implementations are safe for concurrent use. Every method honours ctx:
// a cancelled or expired context returns an error that matches ctx.Err().
type Backend interface {
	// Get returns the blob stored under name and its version. A missing
	// blob is an error matching ErrNotFound. The returned slice belongs
	// to the caller.
	Get(ctx context.Context, name string) (blob []byte, v Version, err error)

	// Put stores blob under name if the stored version is ifVersion
	// (Absent: nothing stored; Any: unconditional) and returns the new
	// version. A mismatch is an error matching ErrConflict and changes
	// nothing. When Put returns nil the write is durable as far as the
	// backend can make it so; when it returns an error the previous blob
	// is still stored whole.
	Put(ctx context.Context, name string, blob []byte, ifVersion Version) (Version, error)

	// Delete removes name if its version is ifVersion (Any: whatever it
	// is). A missing blob is an error matching ErrNotFound.
	Delete(ctx context.Context, name string, ifVersion Version) error

	// List returns the names of all stored blobs except HeaderName,
	// sorted. Entries that are not blobs of this backend are ignored.
	List(ctx context.Context) ([]string, error)

	// Close releases the backend's resources. It does not delete data.
	Close() error
}

// Locker is implemented by backends that can hold an exclusive lock shared
// with other processes: an advisory file lock on one machine, a lease on a
// distributed engine. Callers use it around read-modify-write cycles and
// token refreshes; the Version check on Put remains the fence, so a holder
// whose lease ran out still cannot overwrite a newer blob.
type Locker interface {
	// Lock blocks until it holds the lock called name or ctx ends.
	Lock(ctx context.Context, name string) (Lock, error)
}

// Lock is a held lock. Unlock releases it; a second Unlock is a no-op.
type Lock interface {
	Unlock(ctx context.Context) error
}

// KeyStore holds small secrets, such as 32-byte key-encryption keys, in an
// OS keychain. Accounts are "<vault id>/<key id>".
type KeyStore interface {
	// GetKey returns the secret stored for account; the caller wipes it.
	// A missing entry is an error matching ErrNotFound.
	GetKey(ctx context.Context, account string) ([]byte, error)
	// PutKey stores (or replaces) the secret for account.
	PutKey(ctx context.Context, account string, key []byte) error
	// DeleteKey removes the entry; a missing entry matches ErrNotFound.
	DeleteKey(ctx context.Context, account string) error
}

// Error categories. Match them with errors.Is; an *OpError carries the detail.
var (
	ErrNotFound    = errors.New("backends: not found")
	ErrConflict    = errors.New("backends: version conflict")
	ErrTooLarge    = errors.New("backends: blob too large")
	ErrUnavailable = errors.New("backends: unavailable")
	ErrLocked      = errors.New("backends: locked")
	ErrPermission  = errors.New("backends: unsafe permissions")
	ErrInvalidName = errors.New("backends: invalid name")
)
