package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// naiveMigrateEnv, when set to 1, makes the test binary copy a file vault
// folder the naive way instead of running vaultctl: the header first, then
// the sessions one by one (2 ms apart, as a slow disk would). It is the
// broken migrate of TestMigrateKill9's self-test.
const naiveMigrateEnv = "VAULTCTL_TEST_NAIVE_MIGRATE"

// naiveMigrateMain copies the vault folder args[0] to args[1], header
// first. It returns the exit code.
func naiveMigrateMain(args []string) int {
	if len(args) != 2 {
		return 2
	}
	src, dst := args[0], args[1]
	if err := os.MkdirAll(filepath.Join(dst, "sessions"), 0o700); err != nil {
		return 1
	}
	copyFile := func(rel string) error {
		b, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	}
	if err := copyFile("vault.hdr"); err != nil {
		return 1
	}
	names, err := filepath.Glob(filepath.Join(src, "sessions", "*.sealed"))
	if err != nil {
		return 1
	}
	sort.Strings(names)
	for _, n := range names {
		time.Sleep(2 * time.Millisecond)
		if err := copyFile(filepath.Join("sessions", filepath.Base(n))); err != nil {
			return 1
		}
	}
	return 0
}

// unreadableSessions runs status in-process and returns how many of the n
// sessions are missing or do not open, or n if the vault does not open.
// Unlike checkAllOpen it reports nothing: the self-test expects findings.
func unreadableSessions(t *testing.T, dir, passFile string, n int) int {
	t.Helper()
	_, out, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", passFile, "--json", "status")
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return n
	}
	bad := n - len(doc.Sessions)
	for _, s := range doc.Sessions {
		if s.Error != "" {
			bad++
		}
	}
	return bad
}

// TestMigrateKill9HarnessCatchesHeaderFirst runs TestMigrateKill9's kill
// loop on a migrate broken on purpose (the header copied first, then the
// sessions): killed mid-copy, it leaves a destination that opens with
// sessions missing, which the harness must count.
func TestMigrateKill9HarnessCatchesHeaderFirst(t *testing.T) {
	const n = 100
	dir, pass := makeVault(t, n)
	env := append(baseEnv(t), naiveMigrateEnv+"=1")
	var r migrateKills
	for attempt := 0; attempt < 3 && r.badAfterKill == 0; attempt++ {
		dst := filepath.Join(t.TempDir(), "dst")
		r = migrateKillLoop(t, 8, 300*time.Millisecond, env, []string{dir, dst}, dst, pass, n, unreadableSessions)
	}
	f := newMigrateFigures("vaultctl/migrate-kill9-selftest", n, r, 0)
	f.Report(t)
	if r.badAfterKill == 0 {
		t.Fatalf("the harness saw no session missing from a destination whose header was copied first: %s", f)
	}
}
