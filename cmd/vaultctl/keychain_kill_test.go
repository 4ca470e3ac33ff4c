//go:build unix

package main

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/figures"
)

// requireSecretService skips without a Secret Service (run the tests
// under scripts/with-keyring), except where services are required.
func requireSecretService(t *testing.T) {
	t.Helper()
	if os.Getenv("SESSIONVAULT_SECRET_SERVICE") == "1" {
		return
	}
	if ci, _ := scriptCondition("ci"); ci {
		t.Fatal("a Secret Service is required here: run the tests under scripts/with-keyring")
	}
	t.Skip("no Secret Service: run under scripts/with-keyring")
}

// TestKeySourceMoveKill9 moves a vault back and forth between a
// passphrase and the OS keychain with rotate-key --keychain-slot and
// rotate-key --passphrase-slot, killing the process at random moments: after
// every kill the vault opens with the passphrase or the keychain, every
// session opens, and the next move completes.
func TestKeySourceMoveKill9(t *testing.T) {
	requireSecretService(t)
	const sessions = 40
	runs := figures.Scale(0, 12, 100)
	if testing.Short() {
		runs = 4
	}
	fig := figures.New("vaultctl/key-source-move-kill9")
	fig.Declare("runs", "killed_mid_run", "finished_first", "unopenable_after_kill")
	defer fig.Report(t)

	dir, pass := makeVault(t, 0)
	sealSessions(t, dir, "crash-test-passphrase", sessions, 0)
	both := []string{"--dir", dir, "--keychain", "--passphrase-file", pass}
	toKeychain := append(append([]string{}, both...), "rotate-key", "--keychain-slot")
	toPassphrase := append(append([]string{}, both...), append([]string{"rotate-key", "--passphrase-slot", "--new-passphrase-file", pass}, floorKDF...)...)

	// Time one move each way to aim the kills inside a run.
	start := time.Now()
	for _, args := range [][]string{toKeychain, toPassphrase} {
		if code, _, stderr := runCLI(t, nil, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args[5:], code, stderr)
		}
	}
	window := time.Since(start)/2 + 30*time.Millisecond
	env := baseEnv(t, "DBUS_SESSION_BUS_ADDRESS")

	slotKinds := func() map[string]bool {
		code, out, stderr := runCLI(t, nil, append(append([]string{}, both...), "--json", "status")...)
		var doc struct {
			Vault struct {
				Slots []struct{ Kind string } `json:"slots"`
			} `json:"vault"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
			fig.Inc("unopenable_after_kill")
			t.Fatalf("the vault does not open with the passphrase or the keychain: exit %d: %s", code, stderr)
		}
		kinds := map[string]bool{}
		for _, s := range doc.Vault.Slots {
			kinds[s.Kind] = true
		}
		return kinds
	}
	for range runs {
		fig.Inc("runs")
		args := toKeychain
		if slotKinds()["keychain"] {
			args = toPassphrase
		}
		if killRandomlyEnv(t, window, env, args...) {
			fig.Inc("finished_first")
		} else {
			fig.Inc("killed_mid_run")
		}
		slotKinds()
		if _, bad := checkAllOpenWith(t, sessions, both...); bad != 0 {
			return
		}
	}
	// Finish on a passphrase, which the in-process checks can use alone.
	if code, _, stderr := runCLI(t, nil, toPassphrase...); code != 0 {
		t.Fatalf("final move: exit %d: %s", code, stderr)
	}
	if k := slotKinds(); k["keychain"] || !k["passphrase"] {
		t.Fatalf("after the final move the slots are %v, want only a passphrase", k)
	}
}
