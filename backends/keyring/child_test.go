package keyring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// The fast-failure tests run the test binary again as a child process:
// 99designs/keyring looks for the session bus once, at init, so each
// environment needs a process of its own.
const childEnv = "SESSIONVAULT_KEYRING_CHILD"

// childDeadline is the deadline the child gives each call: far above the
// bounds the tests assert, so that a failure that waits for the deadline
// shows up as a *TimeoutError instead of passing.
const childDeadline = 30 * time.Second

func runChild(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*childDeadline)
	defer cancel()
	var err error
	switch mode {
	case "nobus":
		err = childNoBus(ctx)
	case "locked":
		err = childLocked(ctx)
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	fmt.Println("OK")
	return 0
}

// childNoBus: Open of the D-Bus backends fails with ErrUnavailable, fast,
// and names the reason.
func childNoBus(ctx context.Context) error {
	for _, cfg := range []Config{secretServiceConfig(), {AllowedBackends: []BackendType{KWalletBackend}}} {
		start := time.Now()
		_, err := Open(ctx, cfg, WithTimeout(childDeadline))
		elapsed := time.Since(start)
		fmt.Printf("Open(%s): %v after %v\n", cfg.AllowedBackends[0], err, elapsed)
		if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "D-Bus") {
			return fmt.Errorf("Open(%s) without a bus: %v, want ErrUnavailable naming D-Bus", cfg.AllowedBackends[0], err)
		}
		var te *secretstore.TimeoutError
		if errors.As(err, &te) {
			return fmt.Errorf("Open(%s) waited for its deadline", cfg.AllowedBackends[0])
		}
		fmt.Printf("ELAPSED %s %d\n", cfg.AllowedBackends[0], elapsed.Nanoseconds())
	}
	return nil
}

// childLocked runs inside a private bus: it starts gnome-keyring unlocked,
// stores a key through 99designs' Secret Service backend, locks the login
// collection over D-Bus, and checks that calls then fail with ErrLocked
// or ErrUnavailable, saying so, before their deadline.
func childLocked(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "gnome-keyring-daemon", "--unlock", "--components=secrets")
	cmd.Stdin = strings.NewReader("throwaway-test-password")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnome-keyring-daemon: %v: %s", err, out)
	}
	if err := waitForName(ctx, "org.freedesktop.secrets"); err != nil {
		return err
	}
	k, err := Open(ctx, secretServiceConfig(), WithTimeout(childDeadline))
	if err != nil {
		return fmt.Errorf("Open: %v", err)
	}
	if err := k.PutKey(ctx, "vault/kek", make([]byte, 32)); err != nil {
		return fmt.Errorf("PutKey while unlocked: %v", err)
	}
	out, err := exec.CommandContext(ctx, "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets",
		"/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock",
		"array:objpath:/org/freedesktop/secrets/collection/login").CombinedOutput()
	if err != nil {
		return fmt.Errorf("locking the login collection: %v: %s", err, out)
	}
	calls := []struct {
		name string
		f    func() error
	}{
		{"GetKey", func() error { _, err := k.GetKey(ctx, "vault/kek"); return err }},
		{"PutKey", func() error { return k.PutKey(ctx, "vault/kek", make([]byte, 32)) }},
		{"DeleteKey", func() error { return k.DeleteKey(ctx, "vault/kek") }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.f()
		fmt.Printf("%s: %v after %v\n", c.name, err, time.Since(start))
		var te *secretstore.TimeoutError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("%s on a locked collection waited for its deadline: %v", c.name, err)
		case !errors.Is(err, backends.ErrLocked):
			return fmt.Errorf("%s on a locked collection: %v, want ErrLocked", c.name, err)
		}
	}
	return nil
}

// waitForName waits (at most 10 s) until name has an owner on the session
// bus.
func waitForName(ctx context.Context, name string) error {
	for i := 0; i < 100; i++ {
		out, _ := exec.CommandContext(ctx, "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:"+name).Output()
		if strings.Contains(string(out), "boolean true") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s has no owner after 10 s", name)
}

// runChildProcess runs this test binary as a child in mode, with argv
// before it (e.g. dbus-run-session --) and env added, and returns its
// output; the test fails if the child does.
func runChildProcess(t *testing.T, mode string, wrap []string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, wrap...), exe, "-test.run=^$")
	ctx, cancel := context.WithTimeout(t.Context(), 3*childDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+mode)...)
	out, err := cmd.CombinedOutput()
	t.Logf("child %s:\n%s", mode, out)
	if err != nil || !strings.Contains("\n"+string(out), "\nOK\n") {
		t.Fatalf("child %s failed: %v", mode, err)
	}
	return string(out)
}

// maxElapsed returns the longest ELAPSED figure a child printed.
func maxElapsed(out string) time.Duration {
	var longest time.Duration
	for _, l := range strings.Split(out, "\n") {
		var name string
		var ns int64
		if _, err := fmt.Sscanf(l, "ELAPSED %s %d", &name, &ns); err == nil && time.Duration(ns) > longest {
			longest = time.Duration(ns)
		}
	}
	return longest
}

// privateXDG returns the environment for a child keyring of its own.
func privateXDG(t *testing.T) []string {
	dir := t.TempDir()
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{data, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"XDG_DATA_HOME=" + data, "XDG_RUNTIME_DIR=" + run}
}

// requireTools skips (or, when services are required, fails) if a
// command the test runs is missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if servicetest.Required() {
				t.Fatalf("%s is required but missing: run scripts/install-keyring-deps", n)
			}
			t.Skipf("%s is missing (scripts/install-keyring-deps installs it)", n)
		}
	}
}

// TestNoBus: with DBUS_SESSION_BUS_ADDRESS naming a socket that does not
// exist when the program starts, Open of the Secret Service and KWallet
// backends fails with ErrUnavailable at once. Needs no service.
func TestNoBus(t *testing.T) {
	out := runChildProcess(t, "nobus", nil,
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "no-such-socket"))
	// Generous: it takes microseconds here; the child's deadline is 30 s.
	if d := maxElapsed(out); d > 2*time.Second || d == 0 {
		t.Fatalf("slowest Open without a bus took %v, want under 2 s", d)
	}
}

// TestLockedCollection: a real gnome-keyring whose login collection was
// locked after use.
func TestLockedCollection(t *testing.T) {
	requireTools(t, "dbus-run-session", "gnome-keyring-daemon", "dbus-send")
	runChildProcess(t, "locked", []string{"dbus-run-session", "--"}, privateXDG(t)...)
}
