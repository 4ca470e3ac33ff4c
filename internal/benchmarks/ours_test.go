package benchmarks

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// benchPassphrase unlocks every benchmark vault. It protects nothing: the
// vaults live in temp folders and hold generated sessions.
const benchPassphrase = "correct horse battery staple"

// setupParams are the argon2id parameters of vaults whose benchmarks do not
// time the KDF: the production floor, so that setting up costs ~20 ms
// instead of ~75 ms, through the ordinary production path.
var setupParams = kdf.Floor

// openVault is an open vault and its file backend.
type openVault struct {
	v  *vault.Vault
	be backends.Backend
}

// close closes the vault (wiping its keys), then its backend.
func (o *openVault) close() error {
	err := o.v.Close()
	if e := o.be.Close(); err == nil {
		err = e
	}
	return err
}

// openFileVaultNoCleanup opens (create: creates, with params) the
// file-backed vault in dir with the benchmark passphrase.
func openFileVaultNoCleanup(tb testing.TB, dir string, create bool, params kdf.Params) *openVault {
	tb.Helper()
	be, err := file.New(dir)
	if err != nil {
		tb.Fatal(err)
	}
	opts := []vault.Option{vault.WithPassphrase([]byte(benchPassphrase))}
	var v *vault.Vault
	if create {
		v, err = vault.Create(context.Background(), be, append(opts, vault.WithKDFParams(params))...)
	} else {
		v, err = vault.Open(context.Background(), be, opts...)
	}
	if err != nil {
		be.Close()
		tb.Fatal(err)
	}
	return &openVault{v: v, be: be}
}

// openFileVault is openFileVaultNoCleanup, closed when tb ends.
func openFileVault(tb testing.TB, dir string, create bool, params kdf.Params) *vault.Vault {
	tb.Helper()
	o := openFileVaultNoCleanup(tb, dir, create, params)
	tb.Cleanup(func() { o.close() })
	return o.v
}

// vaultDir returns a path for a new vault folder (file.New creates it,
// 0700) inside tb's temp folder.
func vaultDir(tb testing.TB) string {
	return filepath.Join(tb.TempDir(), "vault")
}

// sealer saves a payload under one name through a session.Store and keeps
// the version for the next compare-and-set.
type sealer struct {
	st  session.Store
	ver backends.Version
}

func (s *sealer) save(payload []byte) error {
	v, err := s.st.Seal(context.Background(), payload, s.ver)
	if err != nil {
		return err
	}
	s.ver = v
	return nil
}

func (s *sealer) load(want []byte) error {
	pt, _, err := s.st.Open(context.Background())
	if err != nil {
		return err
	}
	err = same(pt, want)
	clear(pt)
	return err
}

// ours is this module's way: a file-backed vault with a passphrase slot,
// already open; seal the session, store it durably, open it again.
func ours(tb testing.TB, payload []byte) contender {
	tb.Helper()
	v := openFileVault(tb, vaultDir(tb), true, setupParams)
	s := &sealer{st: v.Store("session")}
	return contender{name: "sessionvault", op: func(int) error {
		if err := s.save(payload); err != nil {
			return err
		}
		return s.load(payload)
	}}
}

// oursSave and oursLoad are the two halves of ours.
func oursSave(tb testing.TB, payload []byte) contender {
	tb.Helper()
	v := openFileVault(tb, vaultDir(tb), true, setupParams)
	s := &sealer{st: v.Store("session")}
	return contender{name: "sessionvault-save", op: func(int) error { return s.save(payload) }}
}

func oursLoad(tb testing.TB, payload []byte) contender {
	tb.Helper()
	v := openFileVault(tb, vaultDir(tb), true, setupParams)
	s := &sealer{st: v.Store("session")}
	if err := s.save(payload); err != nil {
		tb.Fatal(err)
	}
	return contender{name: "sessionvault-load", op: func(int) error { return s.load(payload) }}
}

// BenchmarkCompare is the headline: store the realistic 2 KiB session
// durably and read it back, ours and every baseline interleaved in one
// run. ns/op is ours; "x-NAME" is ours divided by NAME (goals: x-physical
// <= 1.10; x-99designs-file <= 0.20, i.e. at least 5x faster).
func BenchmarkCompare(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	res := race(b, true,
		ours(b, payload),
		physical(b, payload),
		axiomtrade(b, payload),
		ninetyNineFile(b, payload),
	)
	reportQuantiles(b, "", &res[0].hist)
	reportQuantiles(b, "physical-", &res[1].hist)
}

// BenchmarkOurs times ours alone, and each half alone: ns/op, B/op and
// allocs/op of this module only.
func BenchmarkOurs(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	for _, c := range []struct {
		name string
		mk   func(testing.TB, []byte) contender
	}{
		{"save+load", ours},
		{"save", oursSave},
		{"load", oursLoad},
	} {
		b.Run(c.name, func(b *testing.B) { runAlone(b, c.mk(b, payload), len(payload)) })
	}
}
