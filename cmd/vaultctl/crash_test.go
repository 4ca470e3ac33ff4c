//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// runCLI runs vaultctl in this process and returns its exit code and
// output. The environment is the given map only.
func runCLI(t testing.TB, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		stdin:        strings.NewReader(""),
		stdout:       &stdout,
		stderr:       &stderr,
		getenv:       func(k string) string { return env[k] },
		openTerminal: nil,
	}
	code := a.run(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

// makeVault creates a vault with n sessions through the CLI, at the KDF
// floor, and returns its folder and the passphrase file.
func makeVault(t testing.TB, n int, extraInit ...string) (dir, passFile string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "vault")
	passFile = filepath.Join(base, "pass")
	if err := os.WriteFile(passFile, []byte("crash-test-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	args := append([]string{"--dir", dir, "--passphrase-file", passFile, "init"}, floorKDF...)
	if code, _, stderr := runCLI(t, env, append(args, extraInit...)...); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	sealSessions(t, dir, "crash-test-passphrase", n, 0)
	return dir, passFile
}

type statusDoc struct {
	Vault struct {
		Generation  uint32   `json:"generation"`
		Generations []uint32 `json:"generations"`
	} `json:"vault"`
	Sessions []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"sessions"`
}

// checkAllOpen runs status and verify in-process: every one of n
// sessions must open.
func checkAllOpen(t *testing.T, dir, passFile string, n int) statusDoc {
	t.Helper()
	code, out, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", passFile, "--json", "status")
	if code != 0 {
		t.Fatalf("status after a kill: exit %d: %s\n%s", code, stderr, out)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Sessions) != n {
		t.Fatalf("status lists %d sessions, want %d", len(doc.Sessions), n)
	}
	for _, s := range doc.Sessions {
		if s.Error != "" {
			t.Fatalf("session %s does not open: %s", s.Name, s.Error)
		}
	}
	return doc
}

// killRandomly starts vaultctl ARGS as a child process, SIGKILLs it after
// a random delay below max, and reports whether it had already finished.
func killRandomly(t *testing.T, max time.Duration, args ...string) (finished bool) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = baseEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v finished with %v before the kill: %s", args, err, stderr.String())
		}
		return true
	case <-time.After(time.Duration(rand.Int64N(int64(max)))):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = <-done
	if err == nil {
		return true
	}
	return false
}

// TestRotateKeyKill9 kills rotate-key with SIGKILL at random moments over
// a vault of a few hundred sessions: after every kill every session
// opens, and a rerun completes the rotation.
func TestRotateKeyKill9(t *testing.T) {
	sessions, kills := 200, 40
	if testing.Short() {
		sessions, kills = 60, 8
	}
	dir, pass := makeVault(t, sessions)
	// Measure one full rotation to aim the kills inside it.
	start := time.Now()
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "rotate-key"); code != 0 {
		t.Fatalf("rotate-key: %d %s", code, stderr)
	}
	window := time.Since(start) + 20*time.Millisecond // plus process start-up

	killed, finished := 0, 0
	for range kills {
		if killRandomly(t, window, "--dir", dir, "--passphrase-file", pass, "rotate-key") {
			finished++
		} else {
			killed++
		}
		checkAllOpen(t, dir, pass, sessions)
	}
	// A rerun completes whatever the last kill interrupted.
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "rotate-key"); code != 0 {
		t.Fatalf("rotate-key after the kills: %d %s", code, stderr)
	}
	doc := checkAllOpen(t, dir, pass, sessions)
	if len(doc.Vault.Generations) != 1 {
		t.Fatalf("after a completed rotation the header holds generations %v, want one", doc.Vault.Generations)
	}
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify"); code != 0 {
		t.Fatalf("verify: %d %s", code, stderr)
	}
	t.Logf("rotate-key over %d sessions: %d kills mid-run, %d runs finished first; every session opened after each", sessions, killed, finished)
	if killed == 0 {
		t.Fatal("no run was killed mid-way: the kill window is wrong")
	}
}

// TestPasswdKill9 kills passwd at random moments: afterwards the vault
// opens with the old passphrase or the new one, never neither.
func TestPasswdKill9(t *testing.T) {
	kills := 30
	if testing.Short() {
		kills = 6
	}
	dir, pass := makeVault(t, 3)
	newPass := filepath.Join(filepath.Dir(pass), "new")
	if err := os.WriteFile(newPass, []byte("the-new-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cur, other := pass, newPass
	for range kills {
		killRandomly(t, 60*time.Millisecond, append([]string{"--dir", dir, "--passphrase-file", cur, "passwd", "--new-passphrase-file", other}, floorKDF...)...)
		codeCur, _, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", cur, "status")
		codeOther, _, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", other, "status")
		switch {
		case codeCur == 0 && codeOther == exitWrongKey:
		case codeOther == 0 && codeCur == exitWrongKey:
			cur, other = other, cur
		default:
			t.Fatalf("after a kill: old passphrase exit %d, new passphrase exit %d", codeCur, codeOther)
		}
		checkAllOpen(t, dir, cur, 3)
	}
}

// sealSessions adds n sessions (names s0000...) to the vault in dir
// through the library: one unlock for all of them. Each session is the
// full axiomtrade-rs shape, padded with extra cookies to about pad bytes.
func sealSessions(t testing.TB, dir, pass string, n, pad int) {
	t.Helper()
	ctx := context.Background()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(pass)))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range n {
		doc := fmt.Sprintf(`{"access_token":"crash-access-%04d","refresh_token":"crash-refresh-%04d","expires_at":"2099-01-01T00:00:00Z"}`, i, i)
		s, err := session.ParseSession([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; pad > 0 && j < pad/64; j++ {
			s.Cookies.Additional[fmt.Sprintf("pad%03d", j)] = session.NewSecret(bytes.Repeat([]byte{'a' + byte(j%26)}, 48))
		}
		plain, err := s.MarshalPlaintext()
		s.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Store(fmt.Sprintf("s%04d", i)).Seal(ctx, plain, backends.Absent); err != nil {
			t.Fatal(err)
		}
		clear(plain)
	}
}
