package secretstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/sessionvault/sessionvault/backends"
)

var _ backends.KeyStore = (*Keychain)(nil)

// GetKey returns the key stored for account ("<vault id>/<key id>"), in a
// new slice that the caller wipes. The Store's own copies (a Go string in
// some keychain libraries) are outside this package's reach; see the
// Store's documentation.
func (k *Keychain) GetKey(ctx context.Context, account string) ([]byte, error) {
	const op = "get key"
	if err := ValidateAccount(account); err != nil {
		return nil, k.opError(op, account, "", err)
	}
	return k.call(ctx, op, account, false, func(context.Context) ([]byte, error) {
		rec, err := k.get(account)
		defer wipe(rec)
		if err != nil {
			return nil, err
		}
		return decodeKey(rec)
	})
}

// PutKey stores key (1 to MaxKeyLen bytes) for account, replacing any
// previous key. key is copied before PutKey returns; the caller keeps
// ownership and wipes it.
func (k *Keychain) PutKey(ctx context.Context, account string, key []byte) error {
	const op = "put key"
	if err := ValidateAccount(account); err != nil {
		return k.opError(op, account, "", err)
	}
	if len(key) == 0 || len(key) > MaxKeyLen {
		return k.opError(op, account, "", fmt.Errorf("%w: a key must be 1 to %d bytes, got %d", backends.ErrTooLarge, MaxKeyLen, len(key)))
	}
	rec := encodeKey(key)
	if err := k.checkSize(account, len(rec)); err != nil {
		wipe(rec)
		return k.opError(op, account, "", err)
	}
	_, err := k.call(ctx, op, account, true, func(context.Context) ([]byte, error) {
		defer wipe(rec)
		return nil, k.store.Set(account, rec)
	})
	return err
}

// DeleteKey removes the key for account; a missing entry matches
// backends.ErrNotFound.
func (k *Keychain) DeleteKey(ctx context.Context, account string) error {
	const op = "delete key"
	if err := ValidateAccount(account); err != nil {
		return k.opError(op, account, "", err)
	}
	_, err := k.call(ctx, op, account, true, func(context.Context) ([]byte, error) {
		return nil, k.store.Delete(account)
	})
	return err
}

// get reads the value for account and bounds its size.
func (k *Keychain) get(account string) ([]byte, error) {
	rec, err := k.store.Get(account)
	if err != nil {
		wipe(rec)
		return nil, err
	}
	if max := k.store.MaxValueLen(account); len(rec) > max {
		wipe(rec)
		return nil, malformed("entry holds %d bytes, more than the %d this keychain stores", len(rec), max)
	}
	return rec, nil
}

// checkSize refuses a value of n bytes for account that the Store cannot
// hold.
func (k *Keychain) checkSize(account string, n int) error {
	if max := k.store.MaxValueLen(account); n > max {
		return fmt.Errorf("%w: entry of %d bytes exceeds this keychain's limit of %d", backends.ErrTooLarge, n, max)
	}
	return nil
}

// ValidateAccount reports whether account has the form "<vault id>/<key
// id>": two parts of 1 to MaxAccountPartLen bytes from A-Z a-z 0-9 - _ . @
// +, neither "." nor "..". The single '/' keeps key accounts apart from
// blob accounts ("blobs/NAMESPACE/NAME"). The error matches
// backends.ErrInvalidName.
func ValidateAccount(account string) error {
	vault, key, ok := strings.Cut(account, "/")
	if !ok {
		return &backends.NameError{Name: account, Reason: `not of the form "<vault id>/<key id>"`}
	}
	if err := validatePart(vault, "vault id", MaxAccountPartLen); err != nil {
		return &backends.NameError{Name: account, Reason: err.Error()}
	}
	if err := validatePart(key, "key id", MaxAccountPartLen); err != nil {
		return &backends.NameError{Name: account, Reason: err.Error()}
	}
	return nil
}

// validatePart checks one part of an account or a namespace.
func validatePart(s, what string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s must be 1 to %d bytes", what, max)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%s may not be %q", what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.@+", c) >= 0) {
			return fmt.Errorf("%s contains a byte outside A-Z a-z 0-9 - _ . @ +", what)
		}
	}
	return nil
}
