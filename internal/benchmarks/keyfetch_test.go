package benchmarks

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"testing"

	"github.com/99designs/keyring"
	zkeyring "github.com/zalando/go-keyring"
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
	if os.Getenv("CI") == "true" || os.Getenv("SESSIONVAULT_REQUIRE_SERVICES") == "1" {
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

// BenchmarkKeyFetch times one 32-byte key fetch per keychain, each in a
// race with the physical durable write of the 2 KiB session:
// "x-physical" here is the fetch's cost as a multiple of that write.
func BenchmarkKeyFetch(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	for _, k := range []struct {
		name string
		mk   func(testing.TB) contender
	}{
		{"zalando-secret-service", zalandoFetch},
		{"99designs-keyctl", ninetyNineKeyctl},
	} {
		b.Run(k.name, func(b *testing.B) {
			race(b, true, k.mk(b), physicalWrite(b, payload))
		})
	}
}
