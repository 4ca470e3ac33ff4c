package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// KeyStore is an in-process backends.KeyStore, for tests and examples of
// code that takes an OS keychain: keys live in memory as long as the
// KeyStore, are copied in and out (the caller's slices are never kept),
// and are zeroed by Delete and Wipe. It is safe for concurrent use. The
// zero value is an empty, usable KeyStore.
type KeyStore struct {
	mu   sync.Mutex
	keys map[string][]byte
}

// NewKeyStore returns an empty KeyStore.
func NewKeyStore() *KeyStore { return &KeyStore{} }

var _ backends.KeyStore = (*KeyStore)(nil)

// GetKey returns a copy of the key stored for account (the caller wipes
// it), or an error matching backends.ErrNotFound.
func (k *KeyStore) GetKey(ctx context.Context, account string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.keys[account]
	if !ok {
		return nil, fmt.Errorf("memory: key store: %q: %w", account, backends.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// PutKey stores a copy of key for account, replacing (and zeroing) any
// key stored before.
func (k *KeyStore) PutKey(ctx context.Context, account string, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string][]byte{}
	}
	clear(k.keys[account])
	k.keys[account] = append([]byte(nil), key...)
	return nil
}

// DeleteKey zeroes and removes the key of account; a missing entry is an
// error matching backends.ErrNotFound.
func (k *KeyStore) DeleteKey(ctx context.Context, account string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.keys[account]
	if !ok {
		return fmt.Errorf("memory: key store: %q: %w", account, backends.ErrNotFound)
	}
	clear(v)
	delete(k.keys, account)
	return nil
}

// Len returns the number of keys stored.
func (k *KeyStore) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys)
}

// Wipe zeroes and removes every key.
func (k *KeyStore) Wipe() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for a, v := range k.keys {
		clear(v)
		delete(k.keys, a)
	}
}
