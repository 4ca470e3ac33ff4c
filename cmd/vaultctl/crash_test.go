//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// baseEnv is the environment for vaultctl children: no passphrase in the
// environment, no keychain, a private data folder.
func baseEnv(t *testing.T, keep ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case passphraseEnv, dirEnv, "DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", redisURLEnv:
			if !slices.Contains(keep, k) {
				continue
			}
		}
		env = append(env, kv)
	}
	return append(env, asMainEnv+"=1", "XDG_DATA_HOME="+t.TempDir())
}

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

// checkAllOpen runs status in-process: the vault must open, list n
// sessions, and every one must open. It returns the status and the
// number of sessions that are missing or do not open (reported with
// t.Errorf).
func checkAllOpen(t *testing.T, dir, passFile string, n int) (statusDoc, int) {
	t.Helper()
	return checkAllOpenWith(t, n, "--dir", dir, "--passphrase-file", passFile)
}

// checkAllOpenWith is checkAllOpen with the global flags given.
func checkAllOpenWith(t *testing.T, n int, globals ...string) (statusDoc, int) {
	t.Helper()
	code, out, stderr := runCLI(t, nil, append(append([]string{}, globals...), "--json", "status")...)
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status: exit %d: %s: %v", code, stderr, err)
	}
	bad := n - len(doc.Sessions)
	for _, s := range doc.Sessions {
		if s.Error != "" {
			bad++
			t.Errorf("session %s does not open: %s", s.Name, s.Error)
		}
	}
	if code != 0 || bad != 0 {
		t.Errorf("status: exit %d, %d of %d sessions missing or unreadable: %s", code, bad, n, stderr)
	}
	return doc, bad
}

// killRandomly starts vaultctl ARGS as a child process, SIGKILLs it after
// a random delay below max, and reports whether it had already finished.
func killRandomly(t *testing.T, max time.Duration, args ...string) (finished bool) {
	t.Helper()
	return killRandomlyEnv(t, max, baseEnv(t), args...)
}

// killRandomlyEnv is killRandomly with the child's environment given.
func killRandomlyEnv(t *testing.T, max time.Duration, env []string, args ...string) (finished bool) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = env
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
	// A nil error: it exited on its own just before the signal.
	return <-done == nil
}

// TestRotateKeyKill9 kills rotate-key with SIGKILL at random moments over
// a vault of a few hundred sessions: after every kill every session
// opens, and a rerun completes the rotation.
//
// Bounded by default (150 sessions, 15 runs); SESSIONVAULT_LONG=1 runs
// 300 sessions and 200 runs, the figures quoted in SECURITY.md.
func TestRotateKeyKill9(t *testing.T) {
	sessions, kills := figures.Scale(0, 150, 300), figures.Scale(0, 15, 200)
	if testing.Short() {
		sessions, kills = 60, 6
	}
	fig := figures.New("vaultctl/rotate-key-kill9")
	fig.Declare("sessions", "runs", "killed_mid_run", "finished_first", "unreadable_after_kill", "rerun_failed")
	fig.Add("sessions", int64(sessions))
	defer fig.Report(t)
	dir, pass := makeVault(t, sessions)
	// Measure one full rotation to aim the kills inside it.
	start := time.Now()
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "rotate-key"); code != 0 {
		t.Fatalf("rotate-key: %d %s", code, stderr)
	}
	window := time.Since(start) + 20*time.Millisecond // plus process start-up

	killed, finished := 0, 0
	sawRotating := false
	for range kills {
		fig.Inc("runs")
		if killRandomly(t, window, "--dir", dir, "--passphrase-file", pass, "rotate-key") {
			finished++
			fig.Inc("finished_first")
		} else {
			killed++
			fig.Inc("killed_mid_run")
		}
		doc, bad := checkAllOpen(t, dir, pass, sessions)
		fig.Add("unreadable_after_kill", int64(bad))
		if bad != 0 {
			return
		}
		if len(doc.Vault.Generations) > 1 && !sawRotating {
			// An interrupted rotation: verify passes and says how to
			// finish it.
			sawRotating = true
			code, out, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify")
			if code != 0 || !strings.Contains(out, "a rotation was interrupted") {
				t.Errorf("verify mid-rotation: exit %d, output %q %q", code, out, stderr)
			}
		}
	}
	// A rerun completes whatever the last kill interrupted.
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "rotate-key"); code != 0 {
		fig.Inc("rerun_failed")
		t.Fatalf("rotate-key after the kills: %d %s", code, stderr)
	}
	doc, _ := checkAllOpen(t, dir, pass, sessions)
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
	kills := figures.Scale(0, 20, 200)
	if testing.Short() {
		kills = 6
	}
	fig := figures.New("vaultctl/passwd-kill9")
	fig.Declare("runs", "old_passphrase_opens", "new_passphrase_opens", "neither_opens")
	defer fig.Report(t)
	dir, pass := makeVault(t, 3)
	newPass := filepath.Join(filepath.Dir(pass), "new")
	if err := os.WriteFile(newPass, []byte("the-new-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Time one passwd process (there and back) to aim the kills inside
	// a run, process start-up included.
	start := time.Now()
	for _, p := range [][2]string{{pass, newPass}, {newPass, pass}} {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, append([]string{"--dir", dir, "--passphrase-file", p[0], "passwd", "--new-passphrase-file", p[1]}, floorKDF...)...)
		cmd.Env = baseEnv(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("passwd: %v: %s", err, out)
		}
	}
	window := time.Since(start) / 2 * 11 / 10
	cur, other := pass, newPass
	for range kills {
		killRandomly(t, window, append([]string{"--dir", dir, "--passphrase-file", cur, "passwd", "--new-passphrase-file", other}, floorKDF...)...)
		codeCur, _, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", cur, "status")
		codeOther, _, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", other, "status")
		fig.Inc("runs")
		switch {
		case codeCur == 0 && codeOther == exitWrongKey:
			fig.Inc("old_passphrase_opens")
		case codeOther == 0 && codeCur == exitWrongKey:
			fig.Inc("new_passphrase_opens")
			cur, other = other, cur
		default:
			fig.Inc("neither_opens")
			t.Fatalf("after a kill: old passphrase exit %d, new passphrase exit %d", codeCur, codeOther)
		}
		if _, bad := checkAllOpen(t, dir, cur, 3); bad != 0 {
			return
		}
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

// TestRotateKeyInterrupt: SIGINT (Ctrl-C) mid-rotation stops between two
// atomic writes, says so (exit 1), and a rerun finishes the rotation.
func TestRotateKeyInterrupt(t *testing.T) {
	const n = 120
	dir, pass := makeVault(t, 0)
	sealSessions(t, dir, "crash-test-passphrase", n, 0)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for attempt := 0; attempt < 5 && interrupted == 0; attempt++ {
		cmd := exec.Command(exe, "--dir", dir, "--passphrase-file", pass, "rotate-key")
		cmd.Env = baseEnv(t)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+20*attempt) * time.Millisecond)
		_ = cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			// Finished before the signal: try again, earlier or later.
		case errors.As(err, &ee) && killedBySIGINT(ee):
			// The signal came before Main installed its handler (a
			// slow start on a loaded machine): nothing was done yet.
			// Try again, later.
		case errors.As(err, &ee) && ee.ExitCode() == exitError:
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Fatalf("exit 1 without the interruption message: %s", stderr.String())
			}
			interrupted++
		default:
			t.Fatalf("rotate-key after SIGINT: %v: %s", err, stderr.String())
		}
		if _, bad := checkAllOpen(t, dir, pass, n); bad != 0 {
			return
		}
	}
	if interrupted == 0 {
		t.Skip("every run finished before the signal; nothing to check")
	}
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "rotate-key"); code != 0 {
		t.Fatalf("rerun: %d %s", code, stderr)
	}
	if doc, _ := checkAllOpen(t, dir, pass, n); len(doc.Vault.Generations) != 1 {
		t.Fatalf("generations %v after the rerun", doc.Vault.Generations)
	}
}

// killedBySIGINT reports whether the process was ended by SIGINT itself,
// not by its own exit after handling it.
func killedBySIGINT(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGINT
}
