package backends

import "context"

// Recoverer is implemented by backends that keep the previous generation
// of each blob, so that a blob damaged in storage (a flipped bit on disk,
// a truncated file) can be brought back: `vaultctl verify --recover` and
// the vault's Recover use it.
//
// A backend that implements Recoverer keeps, for every name, the blob that
// was current before the latest successful Put (or Restore), and drops it
// when the name is deleted: Delete removes both generations. DropPrevious
// drops it on demand: the vault calls it once a credential or a key
// generation is retired, so that no kept copy still opens with it.
type Recoverer interface {
	// Previous returns the previous generation of name and the version
	// it had while it was current. It is an error matching ErrNotFound
	// when name has no previous generation (it was written once, or
	// deleted) or does not exist.
	Previous(ctx context.Context, name string) (blob []byte, v Version, err error)

	// Restore makes the previous generation of name current again, if
	// the current version is ifVersion (Any: whatever it is; the current
	// blob may be unreadable, which is why one restores). It is written
	// like a Put: atomically, and the blob it replaces becomes the
	// previous generation, so a mistaken Restore can itself be undone.
	// It returns the new current version. A version mismatch matches
	// ErrConflict and changes nothing; no previous generation matches
	// ErrNotFound.
	Restore(ctx context.Context, name string, ifVersion Version) (Version, error)

	// DropPrevious durably removes the kept previous generation of name,
	// and any temporary or leftover copy of name the backend keeps (a
	// temp file or link left by a crashed write), so that afterwards the
	// backend holds only the current blob for name. It is idempotent: nil
	// when name has no previous generation, and nil when name does not
	// exist. The current blob is never touched.
	DropPrevious(ctx context.Context, name string) error
}
