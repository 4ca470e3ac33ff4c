// Package servicetest holds the one rule for tests that need a real
// service (a Redis server, the Secret Service, the kernel keyring): they
// skip with a message saying how to run them when the service is not set
// up, except where the run demands every service, in CI (CI=true) or with
// SESSIONVAULT_REQUIRE_SERVICES=1 (scripts/test sets it); there they fail,
// so that a missing install step cannot pass as a green run.
package servicetest

import (
	"os"
	"testing"
)

// Required reports whether a missing service must fail the test instead
// of skipping it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SESSIONVAULT_REQUIRE_SERVICES") == "1"
}

// Require returns when the environment variable env is set (the wrapper
// script that starts the service sets it). Otherwise it fails t when
// Required, and skips it if not; what names the service and wrapper the
// script to run the tests under.
func Require(t testing.TB, env, what, wrapper string) {
	t.Helper()
	if os.Getenv(env) != "" {
		return
	}
	if Required() {
		t.Fatalf("%s is required (CI=true or SESSIONVAULT_REQUIRE_SERVICES=1) but %s is unset: run the tests under %s", what, env, wrapper)
	}
	t.Skipf("no %s: %s is unset; run under %s to test against the real service", what, env, wrapper)
}
