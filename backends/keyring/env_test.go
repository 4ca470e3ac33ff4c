package keyring

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// requireService skips t when the service that env names is not set up,
// or fails it where every service is required (servicetest.Required).
func requireService(t testing.TB, env, what string) {
	t.Helper()
	servicetest.Require(t, env, what, "scripts/with-keyring")
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
