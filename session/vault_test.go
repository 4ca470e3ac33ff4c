package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// testVault is a real file-backed vault in a temporary folder, with a
// cheap test KDF. Its passphrase sits in a 0600 file beside the vault
// folder, so that child processes can open it without the passphrase
// appearing in their arguments or environment.
type testVault struct {
	dir, passFile string
	v             *vault.Vault
	b             *file.Backend
}

func newVault(t testing.TB) *testVault {
	t.Helper()
	root := t.TempDir()
	tv := &testVault{dir: filepath.Join(root, "vault"), passFile: filepath.Join(root, "passphrase")}
	if err := os.WriteFile(tv.passFile, []byte("test passphrase "+filepath.Base(root)), 0o600); err != nil {
		t.Fatal(err)
	}
	v, b, err := createVault(context.Background(), tv.dir, tv.passFile)
	if err != nil {
		t.Fatal(err)
	}
	tv.v, tv.b = v, b
	t.Cleanup(func() { v.Close(); b.Close() })
	return tv
}

func createVault(ctx context.Context, dir, passFile string) (*vault.Vault, *file.Backend, error) {
	return withVault(ctx, dir, passFile, vault.Create)
}

func openVault(ctx context.Context, dir, passFile string) (*vault.Vault, *file.Backend, error) {
	return withVault(ctx, dir, passFile, vault.Open)
}

func withVault(ctx context.Context, dir, passFile string, f func(context.Context, backends.Backend, ...vault.Option) (*vault.Vault, error)) (*vault.Vault, *file.Backend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	pass, err := os.ReadFile(passFile)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pass)
	b, err := file.New(dir)
	if err != nil {
		return nil, nil, err
	}
	v, err := f(ctx, b, vault.WithPassphrase(pass), vault.WithInsecureKDFForTesting())
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return v, b, nil
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFileVaultRoundTrip(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	m, err := session.NewManager(ctx, tv.v.Store("trader"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/session-after-login.json")
	if err != nil {
		t.Fatal(err)
	}
	imported, err := session.ParseSession(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer imported.Destroy()
	res := session.LoginResult{Tokens: imported.Tokens}
	if err := m.CreateSessionFromLoginResult(ctx, res, &imported.Cookies); err != nil {
		t.Fatal(err)
	}
	m.MarkAPICall("api.axiom.trade")
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// No byte of a token on disk.
	filepath.Walk(tv.dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte("FAKEsig")) || bytes.Contains(b, []byte("eyJhbGci")) {
			t.Errorf("%s holds a token in plaintext", p)
		}
		return nil
	})

	// The next run of the program: a new vault handle, a new manager.
	v2, b2, err := openVault(ctx, tv.dir, tv.passFile)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	defer v2.Close()
	m2, err := session.NewManager(ctx, v2.Store("trader"))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close(ctx)
	snap, err := m2.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Destroy()
	if !snap.Tokens.AccessToken.Equal(imported.Tokens.AccessToken) || !snap.Tokens.ExpiresAt.Equal(*imported.Tokens.ExpiresAt) {
		t.Error("tokens did not survive the vault")
	}
	if snap.Metadata.CurrentAPIServer == nil || *snap.Metadata.CurrentAPIServer != "api.axiom.trade" {
		t.Error("write-behind metadata not flushed by Close")
	}
}

func TestFileVaultUnreadableSessionIsTypedError(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	m, err := session.NewManager(ctx, tv.v.Store("s"))
	if err != nil {
		t.Fatal(err)
	}
	tok := session.NewAuthTokens([]byte("first"), []byte("r"), nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	tok2 := session.NewAuthTokens([]byte("second"), []byte("r"), nil)
	defer tok2.Destroy()
	if err := m.UpdateTokens(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	// Store the session with one bit flipped, its previous generation
	// kept: damage that reaches the vault. (Damage the disk does to a
	// stored file is caught by the file backend's own checksums, which
	// read the generation before it instead.)
	fb, err := file.New(tv.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	b, _, err := fb.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	prev, _, err := fb.Previous(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-5] ^= 1
	for _, blob := range [][]byte{prev, b} {
		if _, err := fb.Put(ctx, "s", blob, backends.Any); err != nil {
			t.Fatal(err)
		}
	}
	_, err = session.NewManager(ctx, tv.v.Store("s"))
	if !errors.Is(err, vault.ErrCorrupt) {
		t.Fatalf("NewManager over a damaged session: %v", err)
	}
	var se *session.StoreError
	if !errors.As(err, &se) || se.Op != "open" {
		t.Errorf("not a *session.StoreError: %#v", err)
	}
	// Nothing was overwritten: the vault brings back the previous
	// generation, and the session opens again.
	if restored, err := tv.v.Recover(ctx, "s"); err != nil || !restored {
		t.Fatalf("recover: restored=%v err=%v", restored, err)
	}
	m, err = session.NewManager(ctx, tv.v.Store("s"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	m.WithAccessToken(func(s session.Secret) error {
		if string(s.Bytes()) != "first" {
			t.Errorf("recovered token %q, want the previous generation's", s.Bytes())
		}
		return nil
	})
}

// TestSessionBoundIsVaultBound: the session's size bound (which its
// reader and writer share) is the vault's plaintext cap, so that a session
// the Manager accepts is one the vault seals.
func TestSessionBoundIsVaultBound(t *testing.T) {
	if session.MaxSessionJSONForTest != vault.MaxPlaintextSize {
		t.Fatalf("session bound %d bytes, vault cap %d", session.MaxSessionJSONForTest, vault.MaxPlaintextSize)
	}
}

// TestFileVaultCookieBound: through a real file-backed vault, the
// contention requirement (1,600 uniquely named cookies on one session)
// and the cookie bound itself are stored and load in a new vault handle;
// one cookie more is refused (ErrTooLarge) and what is stored still loads.
func TestFileVaultCookieBound(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	m, err := session.NewManager(ctx, tv.v.Store("fleet"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	tok := session.NewAuthTokens([]byte("a"), []byte("r"), nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	add := func(from, to int) error {
		c := session.AuthCookies{Additional: map[string]session.Secret{}}
		defer c.Destroy()
		for i := from; i < to; i++ {
			c.Additional[fmt.Sprintf("w%d-%d", i%8, i/8)] = session.NewSecret([]byte("v"))
		}
		return m.UpdateCookies(ctx, c)
	}
	loads := func(want int) {
		t.Helper()
		v2, b2, err := openVault(ctx, tv.dir, tv.passFile)
		if err != nil {
			t.Fatal(err)
		}
		defer b2.Close()
		defer v2.Close()
		m2, err := session.NewManager(ctx, v2.Store("fleet"))
		if err != nil {
			t.Fatalf("the stored session does not load: %v", err)
		}
		defer m2.Close(ctx)
		snap, _ := m2.Snapshot()
		defer snap.Destroy()
		if got := len(snap.Cookies.Additional); got != want {
			t.Errorf("%d cookies stored, want %d", got, want)
		}
	}
	if err := add(0, 1600); err != nil {
		t.Fatal(err)
	}
	loads(1600)
	if err := add(1600, session.MaxCookiesForTest); err != nil {
		t.Fatal(err)
	}
	loads(session.MaxCookiesForTest)
	if err := add(session.MaxCookiesForTest, session.MaxCookiesForTest+1); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("one cookie past the bound: %v", err)
	}
	loads(session.MaxCookiesForTest)
}
