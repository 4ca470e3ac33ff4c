package main

import (
	"errors"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/vault"
)

// readCredential reads --passphrase-credential NAME: the systemd
// credential $CREDENTIALS_DIRECTORY/NAME (vault.ReadPassphraseCredential).
// A missing file exits 3, one others can read or a symlink exits 7, and
// every other refusal (no $CREDENTIALS_DIRECTORY: not run by systemd) is
// a usage error.
func readCredential(name string) ([]byte, error) {
	p, err := vault.ReadPassphraseCredential(name)
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, backends.ErrPermission):
		return nil, withHint(err, "see docs/systemd.md")
	}
	return nil, &usageError{msg: "--passphrase-credential: " + err.Error() + ": see docs/systemd.md"}
}
