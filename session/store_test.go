package session

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
)

// testStore is a Store over the real in-memory backend that seals with
// XChaCha20-Poly1305 (AAD = the name), standing in for the vault in the
// unit tests; the integration tests use a file-backed vault.
type testStore struct {
	b     *memory.Backend
	name  string
	key   []byte
	seals atomic.Int64 // successful Seal calls
}

var errTestAuth = errors.New("teststore: message authentication failed")

func newTestStore(t testing.TB) *testStore {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	return &testStore{b: memory.New(), name: "main", key: key}
}

// sibling returns a Store over the same backend and key (another
// "process" sharing the vault), optionally under another name.
func (s *testStore) sibling(name string) *testStore {
	return &testStore{b: s.b, name: name, key: s.key}
}

func (s *testStore) Name() string { return s.name }

func (s *testStore) Open(ctx context.Context) ([]byte, backends.Version, error) {
	blob, v, err := s.b.Get(ctx, s.name)
	if err != nil {
		return nil, "", err
	}
	aead, _ := chacha20poly1305.NewX(s.key)
	if len(blob) < aead.NonceSize() {
		return nil, "", errTestAuth
	}
	pt, err := aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], []byte(s.name))
	if err != nil {
		return nil, "", errTestAuth
	}
	return pt, v, nil
}

func (s *testStore) Seal(ctx context.Context, pt []byte, ifVersion backends.Version) (backends.Version, error) {
	aead, _ := chacha20poly1305.NewX(s.key)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pt)+aead.Overhead())
	rand.Read(nonce)
	blob := aead.Seal(nonce, nonce, pt, []byte(s.name))
	v, err := s.b.Put(ctx, s.name, blob, ifVersion)
	if err == nil {
		s.seals.Add(1)
	}
	return v, err
}

func (s *testStore) Delete(ctx context.Context, ifVersion backends.Version) error {
	return s.b.Delete(ctx, s.name, ifVersion)
}

func (s *testStore) Lock(ctx context.Context) (backends.Lock, error) {
	return s.b.Lock(ctx, s.name)
}

// stored reads what the store holds now, bypassing any Manager.
func (s *testStore) stored(t testing.TB) *AuthSession {
	t.Helper()
	pt, _, err := s.Open(context.Background())
	if err != nil {
		t.Fatalf("reading the store: %v", err)
	}
	defer wipe(pt)
	sess, err := ParseSession(pt)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// clock is a settable clock for WithClock.
type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.t.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

var t0 = time.Date(2025, 8, 14, 17, 0, 0, 0, time.UTC)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestManager(t testing.TB, st Store, opts ...Option) *Manager {
	t.Helper()
	m, err := NewManager(ctxT(t), st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func tokens(access, refresh string, exp *time.Time) AuthTokens {
	return NewAuthTokens([]byte(access), []byte(refresh), exp)
}

func authCookies(access, refresh string) *AuthCookies {
	c := AuthCookies{
		AuthAccessToken:  optSecret([]byte(access)),
		AuthRefreshToken: optSecret([]byte(refresh)),
		GState:           ptr(defaultGState),
		Additional:       map[string]Secret{},
	}
	return &c
}

// seedBuffers gives a Manager the seed's fixed windows (five and fifteen
// minutes), which the tests of the seed's semantics are written against
// with tokens of any lifetime.
func seedBuffers() Option {
	return func(c *config) {
		WithExpiryBuffer(ExpiryBuffer)(c)
		WithRefreshBuffer(RefreshBuffer)(c)
	}
}
