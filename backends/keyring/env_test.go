package keyring

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// requireService skips t when the service that env names is not set up,
// unless CI=true or SESSIONVAULT_REQUIRE_SERVICES=1: then it fails.
func requireService(t testing.TB, env, what string) {
	t.Helper()
	if os.Getenv(env) != "" {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("SESSIONVAULT_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (CI=true or SESSIONVAULT_REQUIRE_SERVICES=1) but %s is unset: run the tests under scripts/with-keyring", what, env)
	}
	t.Skipf("no %s: %s is unset; run under scripts/with-keyring to test against the real service", what, env)
}

func requireSecretService(t testing.TB) {
	t.Helper()
	requireService(t, "SESSIONVAULT_SECRET_SERVICE", "Secret Service")
}

func requireKeyCtl(t testing.TB) {
	t.Helper()
	requireService(t, "SESSIONVAULT_KEYCTL", "kernel keyring")
}

// runID marks every entry this test binary makes, so that the leftover
// checks find exactly ours.
var runID = func() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "svtest" + hex.EncodeToString(b[:])
}()

// uniq returns a fresh identifier carrying runID.
func uniq() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return runID + "-" + hex.EncodeToString(b[:])
}
