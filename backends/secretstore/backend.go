package secretstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/sessionvault/sessionvault/backends"
)

var _ backends.Backend = (*Backend)(nil)

// errClosed is the cause of calls on a closed Backend.
var errClosed = errors.New("backend is closed")

// Backend stores small named blobs in the keychain, under the accounts
// "blobs/NAMESPACE/NAME", with a list of the names kept in the entry
// "blobs/NAMESPACE/.index" (keychains cannot list entries portably). It
// suits the vault header and a few small sealed sessions; MaxBlobLen says
// how small (a few KiB on Windows and macOS).
//
// Versions are random 128-bit values stored with the blob. Put is a
// compare-and-set: it reads the stored version, compares, writes, then
// reads the entry back. Within one Keychain (one process) that is exact:
// every write holds the Keychain's write lock from the read to the end.
// Across processes it is best effort only: OS keychains have no
// compare-and-set, so two processes that read the same version and write
// at once can both succeed, and the later write wins. The read-back turns
// most such races into ErrConflict for the loser, but not all of them.
// Processes that share a namespace must therefore hold a lock of their own
// (e.g. the file backend's Locker on the vault folder) around
// read-modify-write cycles, as the vault does.
//
// The index is updated before a new blob is written and after a blob is
// deleted, so a crash in between leaves a name in the index without a
// blob; List checks every name and leaves such names out.
//
// The zero value is not usable: Keychain.Backend makes Backends.
type Backend struct {
	k      *Keychain
	ns     string
	closed atomic.Bool
}

// Backend returns a Backend whose blobs live under namespace (1 to
// MaxNamespaceLen bytes of A-Z a-z 0-9 - _ . @ +, not "." or ".."): one
// namespace per vault, e.g. the vault's id or the application's name. It
// makes no keychain call. Backends of one Keychain share its write lock
// and call limit.
func (k *Keychain) Backend(namespace string) (*Backend, error) {
	if err := validatePart(namespace, "namespace", MaxNamespaceLen); err != nil {
		return nil, &backends.OpError{Backend: k.name, Op: "open", Kind: backends.ErrInvalidName,
			Err: &backends.NameError{Name: namespace, Reason: err.Error()}}
	}
	return &Backend{k: k, ns: namespace}, nil
}

// account returns the keychain account of a blob name.
func (b *Backend) account(name string) string { return "blobs/" + b.ns + "/" + name }

// indexAccount returns the keychain account of the namespace's index.
func (b *Backend) indexAccount() string { return "blobs/" + b.ns + "/.index" }

// MaxBlobLen returns the largest blob Put stores under name on this
// platform: the keychain's limit for the account less the 20-byte
// framing (a magic and the version). It is 0 for an invalid name.
func (b *Backend) MaxBlobLen(name string) int {
	if backends.ValidateName(name) != nil {
		return 0
	}
	return max(b.k.store.MaxValueLen(b.account(name))-recordHeaderLen, 0)
}

// check validates a call's name and the Backend's state.
func (b *Backend) check(op, name string) error {
	if b.closed.Load() {
		return &backends.OpError{Backend: b.k.name, Op: op, Name: name, Kind: backends.ErrUnavailable, Err: errClosed}
	}
	if err := backends.ValidateName(name); err != nil {
		return &backends.OpError{Backend: b.k.name, Op: op, Name: name, Kind: backends.ErrInvalidName, Err: err}
	}
	return nil
}

// Get returns the blob stored under name and its version.
func (b *Backend) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	const op = "get"
	if err := b.check(op, name); err != nil {
		return nil, "", err
	}
	var v backends.Version
	blob, err := b.k.call(ctx, op, name, false, func(context.Context) ([]byte, error) {
		rec, err := b.k.get(b.account(name))
		defer wipe(rec)
		if err != nil {
			return nil, err
		}
		var blob []byte
		v, blob, err = decodeBlob(rec, b.MaxBlobLen(name))
		return blob, err
	})
	if err != nil {
		return nil, "", err
	}
	return blob, v, nil
}

// Put stores blob under name if the stored version is ifVersion; see the
// type's documentation for what compare-and-set means here. A blob longer
// than MaxBlobLen(name) is refused with ErrTooLarge before any keychain
// call. blob is copied before Put returns.
func (b *Backend) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	const op = "put"
	if err := b.check(op, name); err != nil {
		return "", err
	}
	if max := b.MaxBlobLen(name); len(blob) > max {
		return "", b.k.opError(op, name, "", fmt.Errorf("%w: %d bytes, this keychain stores at most %d under %q",
			backends.ErrTooLarge, len(blob), max, name))
	}
	ver, err := newVersion()
	if err != nil {
		return "", b.k.opError(op, name, "new version", err)
	}
	newV := backends.Version(hex.EncodeToString(ver[:]))
	rec := encodeBlob(ver, blob) // copied now: the caller may reuse blob once we return
	acct := b.account(name)
	_, err = b.k.call(ctx, op, name, true, func(ctx context.Context) ([]byte, error) {
		defer wipe(rec)
		exists, err := b.checkVersion(op, name, ifVersion)
		if err != nil {
			return nil, err
		}
		if !exists && name != backends.HeaderName {
			if err := b.updateIndex(ctx, op, name, true); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil { // the caller left: do not write
			return nil, err
		}
		if err := b.k.store.Set(acct, rec); err != nil {
			return nil, b.k.opError(op, name, "write", err)
		}
		// Read back: a writer in another process that wrote between our
		// read and our write turns up here as a different version.
		got, err := b.k.get(acct)
		defer wipe(got)
		if err != nil {
			if errors.Is(err, backends.ErrNotFound) {
				return nil, b.k.opError(op, name, "verify", fmt.Errorf("%w: deleted by another writer", backends.ErrConflict))
			}
			return nil, nil // the write was acknowledged; the read-back is advisory
		}
		if gv, err := blobVersion(got); err != nil || gv != newV {
			return nil, b.k.opError(op, name, "verify", fmt.Errorf("%w: replaced by another writer", backends.ErrConflict))
		}
		return nil, nil
	})
	if err != nil {
		return "", err
	}
	return newV, nil
}

// checkVersion reads the stored version of name and compares it with
// ifVersion. It reports whether a blob exists.
func (b *Backend) checkVersion(op, name string, ifVersion backends.Version) (bool, error) {
	rec, err := b.k.get(b.account(name))
	defer wipe(rec)
	var cur backends.Version
	switch {
	case errors.Is(err, backends.ErrNotFound):
		if ifVersion == backends.Absent || ifVersion == backends.Any {
			return false, nil
		}
		return false, b.k.opError(op, name, "", fmt.Errorf("%w: want version %q, nothing is stored", backends.ErrConflict, ifVersion))
	case err != nil:
		return false, b.k.opError(op, name, "read", err)
	}
	if cur, err = blobVersion(rec); err != nil {
		return true, b.k.opError(op, name, "read", err)
	}
	switch ifVersion {
	case backends.Any, cur:
		return true, nil
	case backends.Absent:
		return true, b.k.opError(op, name, "", fmt.Errorf("%w: want no blob, version %q is stored", backends.ErrConflict, cur))
	}
	return true, b.k.opError(op, name, "", fmt.Errorf("%w: want version %q, version %q is stored", backends.ErrConflict, ifVersion, cur))
}

// readIndex returns the names in the index (none if it does not exist).
func (b *Backend) readIndex() ([]string, error) {
	rec, err := b.k.get(b.indexAccount())
	defer wipe(rec)
	if errors.Is(err, backends.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeIndex(rec)
}

// updateIndex adds name to the index, or removes it. An index left empty
// is deleted, so a namespace whose blobs are all gone leaves no entry.
func (b *Backend) updateIndex(ctx context.Context, op, name string, add bool) error {
	names, err := b.readIndex()
	if err != nil {
		return b.k.opError(op, name, "read index", err)
	}
	changed := false
	if add {
		names, changed = indexAdd(names, name)
	} else {
		names, changed = indexRemove(names, name)
	}
	if !changed {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	acct := b.indexAccount()
	if len(names) == 0 {
		if err := b.k.store.Delete(acct); err != nil && !errors.Is(err, backends.ErrNotFound) {
			return b.k.opError(op, name, "write index", err)
		}
		return nil
	}
	rec := encodeIndex(names)
	if err := b.k.checkSize(acct, len(rec)); err != nil {
		return b.k.opError(op, name, "write index", fmt.Errorf("%w (the list of names is full)", err))
	}
	if err := b.k.store.Set(acct, rec); err != nil {
		return b.k.opError(op, name, "write index", err)
	}
	return nil
}

// Delete removes name if its version is ifVersion (Any: whatever it is).
func (b *Backend) Delete(ctx context.Context, name string, ifVersion backends.Version) error {
	const op = "delete"
	if err := b.check(op, name); err != nil {
		return err
	}
	if ifVersion == backends.Absent {
		return b.k.opError(op, name, "", fmt.Errorf("%w: Delete needs a version or Any, not Absent", backends.ErrConflict))
	}
	_, err := b.k.call(ctx, op, name, true, func(ctx context.Context) ([]byte, error) {
		exists, err := b.checkVersion(op, name, ifVersion)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, b.k.opError(op, name, "", backends.ErrNotFound)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.k.store.Delete(b.account(name)); err != nil {
			return nil, b.k.opError(op, name, "delete", err)
		}
		if name != backends.HeaderName {
			// The blob is gone; a failure here leaves a name that List
			// skips, so it is not reported.
			_ = b.updateIndex(ctx, op, name, false)
		}
		return nil, nil
	})
	return err
}

// List returns the names of the stored blobs, except HeaderName, sorted.
// It reads the index and then every listed entry, leaving out names whose
// entry is gone.
func (b *Backend) List(ctx context.Context) ([]string, error) {
	const op = "list"
	if b.closed.Load() {
		return nil, &backends.OpError{Backend: b.k.name, Op: op, Kind: backends.ErrUnavailable, Err: errClosed}
	}
	var out []string
	_, err := b.k.call(ctx, op, "", false, func(ctx context.Context) ([]byte, error) {
		names, err := b.readIndex()
		if err != nil {
			return nil, b.k.opError(op, "", "read index", err)
		}
		live := make([]string, 0, len(names))
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rec, err := b.k.get(b.account(n))
			wipe(rec)
			switch {
			case errors.Is(err, backends.ErrNotFound):
				continue
			case err != nil:
				return nil, b.k.opError(op, n, "read", err)
			}
			live = append(live, n)
		}
		out = live
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Close marks the Backend closed; later calls fail with ErrUnavailable.
// The Keychain and other Backends over it stay usable. It deletes nothing.
func (b *Backend) Close() error {
	b.closed.Store(true)
	return nil
}
