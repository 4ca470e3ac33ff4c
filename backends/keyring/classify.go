package keyring

import (
	"errors"
	"io/fs"
	"strings"

	kr "github.com/99designs/keyring"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// classify maps 99designs/keyring's errors to backends categories. Its
// backends return errors of many libraries (D-Bus, syscalls, gpg, jose);
// what is not recognized is taken as the keychain being unavailable, with
// the cause.
func classify(err error) error {
	switch {
	case errors.Is(err, kr.ErrKeyNotFound), errors.Is(err, fs.ErrNotExist):
		return &secretstore.StoreError{Kind: backends.ErrNotFound, Err: err}
	case errors.Is(err, fs.ErrPermission):
		return &secretstore.StoreError{Kind: backends.ErrPermission, Err: err}
	}
	if e := classifyPlatform(err); e != nil {
		return e
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "org.freedesktop.Secret.Error.IsLocked"):
		return &secretstore.StoreError{Kind: backends.ErrLocked, Msg: "the keyring is locked", Err: err}
	case strings.Contains(msg, "integrity check failed"), strings.Contains(msg, "aes.KeyUnwrap"):
		// jose: the file store's passphrase does not unwrap its key.
		return &secretstore.StoreError{Kind: backends.ErrLocked, Msg: "the file keyring does not open with this passphrase", Err: err}
	}
	return &secretstore.StoreError{Kind: backends.ErrUnavailable, Err: err}
}
