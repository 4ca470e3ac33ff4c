package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/kdf"
)

const testPass = "correct horse battery staple"

// cheap returns options for a vault whose passphrase slot derives in
// microseconds (WithInsecureKDFForTesting).
func cheap(pass string, more ...Option) []Option {
	return append([]Option{WithPassphrase([]byte(pass)), WithInsecureKDFForTesting()}, more...)
}

func newMemory() (*memory.Backend, error) { return memory.New(), nil }

func newVault(t testing.TB, opts ...Option) (*Vault, *memory.Backend) {
	t.Helper()
	b := memory.New()
	if len(opts) == 0 {
		opts = cheap(testPass)
	}
	v, err := Create(context.Background(), b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, b
}

func mustOpen(t testing.TB, b backends.Backend, opts ...Option) *Vault {
	t.Helper()
	v, err := Open(context.Background(), b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func seal(t testing.TB, v *Vault, name, plaintext string) backends.Version {
	t.Helper()
	ver, err := v.Store(name).Seal(context.Background(), []byte(plaintext), backends.Any)
	if err != nil {
		t.Fatal(err)
	}
	return ver
}

func open(t testing.TB, v *Vault, name string) string {
	t.Helper()
	p, _, err := v.Store(name).Open(context.Background())
	if err != nil {
		t.Fatalf("open %q: %v", name, err)
	}
	return string(p)
}

// keyStore is an in-memory backends.KeyStore. The real keychains are
// tested in backends/keychain; here a map lets tests make the store fail
// on demand (unavailable, missing key), which a real keychain cannot be
// made to do reliably.
type keyStore struct {
	mu   sync.Mutex
	keys map[string][]byte
	fail error // returned by every call when set
}

func newKeyStore() *keyStore { return &keyStore{keys: map[string][]byte{}} }

func (k *keyStore) GetKey(ctx context.Context, account string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return nil, k.fail
	}
	v, ok := k.keys[account]
	if !ok {
		return nil, fmt.Errorf("test keystore: %q: %w", account, backends.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

func (k *keyStore) PutKey(ctx context.Context, account string, key []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	k.keys[account] = append([]byte(nil), key...)
	return nil
}

func (k *keyStore) DeleteKey(ctx context.Context, account string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	if _, ok := k.keys[account]; !ok {
		return fmt.Errorf("test keystore: %q: %w", account, backends.ErrNotFound)
	}
	delete(k.keys, account)
	return nil
}

func (k *keyStore) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys)
}

// wantErr fails unless err matches want and none of the categories it
// must not be confused with.
func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	for _, other := range []error{ErrWrongKey, ErrCorrupt, ErrUnsupportedVersion, ErrPolicy, ErrTooLarge, ErrNotFound} {
		if other != want && errors.Is(err, other) {
			t.Fatalf("%s: error %v matches %v as well as %v", what, err, other, want)
		}
	}
}

var _ = kdf.Default

// serviceKeyStore is a keyStore that names a service (ServiceNamer), as
// an OS keychain does: its keychain slots record the name (header
// version 3).
type serviceKeyStore struct {
	*keyStore
	service string
}

func (k *serviceKeyStore) Service() string { return k.service }
