package benchmarks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"testing"

	"github.com/99designs/keyring"
	zkeyring "github.com/zalando/go-keyring"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/keychain"
	svkeyring "github.com/sessionvault/sessionvault/backends/keyring"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// Fetching the 32-byte key-encryption key from an OS keychain: what a vault
// with a keychain slot does once per Open. Timed next to the physical
// durable write so that the keychain's cost reads as a multiple of it.

// needService skips b unless the environment variable env is set (by
// scripts/with-keyring), and fails instead when services are required.
func needService(tb testing.TB, env, what string) {
	tb.Helper()
	if os.Getenv(env) != "" {
		return
	}
	msg := fmt.Sprintf("%s not available (%s unset): run under scripts/with-keyring", what, env)
	if servicetest.Required() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

func randomKey(tb testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return k
}

// zalandoFetch gets a 32-byte key (base64: zalando stores strings) from the
// Secret Service through github.com/zalando/go-keyring.
func zalandoFetch(tb testing.TB) contender {
	tb.Helper()
	needService(tb, "SESSIONVAULT_SECRET_SERVICE", "Secret Service")
	key := randomKey(tb)
	service, user := "sessionvault-bench", fmt.Sprintf("bench/%d", os.Getpid())
	if err := zkeyring.Set(service, user, base64.StdEncoding.EncodeToString(key)); err != nil {
		tb.Fatalf("zalando Set: %v", err)
	}
	tb.Cleanup(func() { zkeyring.Delete(service, user) })
	return contender{name: "zalando-secret-service", op: func(int) error {
		s, err := zkeyring.Get(service, user)
		if err != nil {
			return err
		}
		got, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return err
		}
		return same(got, key)
	}}
}

// ninetyNineKeyctl gets a 32-byte key from the kernel keyring through
// 99designs/keyring's KeyCtlBackend (scope "user", a named keyring that is
// unlinked again in cleanup).
func ninetyNineKeyctl(tb testing.TB) contender {
	tb.Helper()
	needService(tb, "SESSIONVAULT_KEYCTL", "kernel keyring")
	name := fmt.Sprintf("sessionvault-bench-%d", os.Getpid())
	kr, err := keyring.Open(keyring.Config{
		ServiceName:     name,
		AllowedBackends: []keyring.BackendType{keyring.KeyCtlBackend},
		KeyCtlScope:     "user",
	})
	if err != nil {
		tb.Fatalf("99designs keyctl: %v", err)
	}
	tb.Cleanup(func() { unlinkUserKeyring(tb, name) })
	key := randomKey(tb)
	if err := kr.Set(keyring.Item{Key: "kek", Data: key}); err != nil {
		tb.Fatalf("99designs keyctl Set: %v", err)
	}
	tb.Cleanup(func() { kr.Remove("kek") })
	return contender{name: "99designs-keyctl", op: func(int) error {
		it, err := kr.Get("kek")
		if err != nil {
			return err
		}
		if !bytes.Equal(it.Data, key) {
			return fmt.Errorf("keyctl returned a different key")
		}
		return nil
	}}
}

// keyStoreFetch is ours: backends.KeyStore.GetKey of a 32-byte key, as a
// vault with a keychain slot does it on Open (with a deadline, framing,
// and the key returned in a wipeable slice).
func keyStoreFetch(tb testing.TB, name string, ks backends.KeyStore) contender {
	tb.Helper()
	ctx := context.Background()
	account := fmt.Sprintf("bench%d/kek", os.Getpid())
	key := randomKey(tb)
	if err := ks.PutKey(ctx, account, key); err != nil {
		tb.Fatalf("%s PutKey: %v", name, err)
	}
	tb.Cleanup(func() { ks.DeleteKey(ctx, account) })
	return contender{name: name, op: func(int) error {
		got, err := ks.GetKey(ctx, account)
		if err != nil {
			return err
		}
		err = same(got, key)
		clear(got)
		return err
	}}
}

// oursKeychain is backends/keychain (zalando/go-keyring underneath) on the
// Secret Service.
func oursKeychain(tb testing.TB) contender {
	tb.Helper()
	needService(tb, "SESSIONVAULT_SECRET_SERVICE", "Secret Service")
	kc, err := keychain.New(keychain.WithService("sessionvault-bench"))
	if err != nil {
		tb.Fatal(err)
	}
	return keyStoreFetch(tb, "keychain", kc)
}

// oursKeyctl is backends/keyring (99designs/keyring underneath) on the
// kernel keyring.
func oursKeyctl(tb testing.TB) contender {
	tb.Helper()
	needService(tb, "SESSIONVAULT_KEYCTL", "kernel keyring")
	name := fmt.Sprintf("sessionvault-bench-ours-%d", os.Getpid())
	kr, err := svkeyring.Open(context.Background(), svkeyring.Config{
		ServiceName:     name,
		AllowedBackends: []svkeyring.BackendType{svkeyring.KeyCtlBackend},
		KeyCtlScope:     "user",
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unlinkUserKeyring(tb, name) })
	return keyStoreFetch(tb, "keyring-keyctl", kr)
}

// BenchmarkKeyFetch times one 32-byte key fetch from each keychain: ours
// (the adapter a vault's keychain slot uses) raced against the bare library
// call and the physical durable write of the 2 KiB session. x-<library> is
// the adapter's overhead; x-physical reads the fetch as a multiple of one
// durable save.
func BenchmarkKeyFetch(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	b.Run("secret-service", func(b *testing.B) {
		race(b, true, oursKeychain(b), zalandoFetch(b), physicalWrite(b, payload))
	})
	b.Run("keyctl", func(b *testing.B) {
		race(b, true, oursKeyctl(b), ninetyNineKeyctl(b), physicalWrite(b, payload))
	})
}
