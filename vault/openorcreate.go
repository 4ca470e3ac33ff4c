package vault

import (
	"context"
	"errors"

	"github.com/sessionvault/sessionvault/backends"
)

// OpenOrCreate opens the vault in b, or creates it when b holds none
// (Open's ErrNotFound), with the same options: the usual first start of
// a program that keeps its sessions in a vault. created reports which
// happened. When another process creates the vault at the same moment,
// OpenOrCreate opens the one that won. Every other error of Open (a wrong
// passphrase, a damaged header) is returned as is: it never creates over
// a vault that exists but does not open.
func OpenOrCreate(ctx context.Context, b backends.Backend, opts ...Option) (v *Vault, created bool, err error) {
	v, err = Open(ctx, b, opts...)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return v, false, err
	}
	v, err = Create(ctx, b, opts...)
	if err == nil {
		return v, true, nil
	}
	if errors.Is(err, ErrExists) {
		v, err = Open(ctx, b, opts...)
		return v, false, err
	}
	return nil, false, err
}
