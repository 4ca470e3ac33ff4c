package keychain

import (
	"context"
	"errors"
	"fmt"
	"github.com/sessionvault/sessionvault/internal/figures"
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

// The fast-failure tests run the test binary again as a child process in
// an environment that lacks part of the keychain: no session bus at all, a
// bus without any Secret Service, a Secret Service whose collection is
// locked. Each needs its own process because the D-Bus session connection
// is process-wide.
const childEnv = "SESSIONVAULT_KEYCHAIN_CHILD"

// childDeadline is the deadline the child gives each call: far above the
// bounds the tests assert, so that a failure that waits for the deadline
// shows up as a *TimeoutError instead of passing.
const childDeadline = 30 * time.Second

// runChild runs in the child process; it prints one line per check and
// returns the exit code.
func runChild(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*childDeadline)
	defer cancel()
	var err error
	switch mode {
	case "nobus", "noservice", "activated":
		err = childExpect(ctx, mode)
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

// childExpect checks that every KeyStore and Backend call fails fast with
// the category the mode calls for.
func childExpect(ctx context.Context, mode string) error {
	want := map[string]error{"nobus": backends.ErrUnavailable, "noservice": backends.ErrUnavailable, "activated": backends.ErrLocked}[mode]
	k, err := New(WithTimeout(childDeadline))
	if err != nil {
		return err
	}
	b, err := k.Backend("child")
	if err != nil {
		return err
	}
	calls := []struct {
		name string
		f    func() error
	}{
		{"Probe", func() error { return k.Probe(ctx) }},
		{"GetKey", func() error { _, err := k.GetKey(ctx, "vault/kek"); return err }},
		{"PutKey", func() error { return k.PutKey(ctx, "vault/kek", make([]byte, 32)) }},
		{"DeleteKey", func() error { return k.DeleteKey(ctx, "vault/kek") }},
		{"Get", func() error { _, _, err := b.Get(ctx, backends.HeaderName); return err }},
		{"Put", func() error { _, err := b.Put(ctx, backends.HeaderName, []byte("h"), backends.Absent); return err }},
		{"List", func() error { _, err := b.List(ctx); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.f()
		elapsed := time.Since(start)
		fmt.Printf("%s: %v after %v\n", c.name, err, elapsed)
		if !errors.Is(err, want) {
			return fmt.Errorf("%s: %v, want an error matching %v", c.name, err, want)
		}
		var te *secretstore.TimeoutError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: waited for the deadline (%v) instead of failing fast", c.name, err)
		}
		fmt.Printf("ELAPSED %s %d\n", c.name, elapsed.Nanoseconds())
	}
	return nil
}

// childLocked runs inside a private bus: it starts gnome-keyring unlocked,
// stores a key, locks the login collection over D-Bus and checks that
// every call then fails with ErrLocked, before the deadline.
func childLocked(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "gnome-keyring-daemon", "--unlock", "--components=secrets")
	cmd.Stdin = strings.NewReader("throwaway-test-password")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnome-keyring-daemon: %v: %s", err, out)
	}
	if err := waitForName(ctx, "org.freedesktop.secrets"); err != nil {
		return err
	}
	k, err := New(WithTimeout(childDeadline))
	if err != nil {
		return err
	}
	if err := k.PutKey(ctx, "vault/kek", make([]byte, 32)); err != nil {
		return fmt.Errorf("PutKey while unlocked: %v", err)
	}
	b, err := k.Backend("child")
	if err != nil {
		return err
	}
	if _, err := b.Put(ctx, "s", []byte("blob"), backends.Absent); err != nil {
		return fmt.Errorf("Put while unlocked: %v", err)
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
		{"Get", func() error { _, _, err := b.Get(ctx, "s"); return err }},
		{"Put", func() error { _, err := b.Put(ctx, "s", []byte("x"), backends.Any); return err }},
		{"List", func() error { _, err := b.List(ctx); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.f()
		elapsed := time.Since(start)
		fmt.Printf("%s: %v after %v\n", c.name, err, elapsed)
		fmt.Printf("ELAPSED %s %d\n", c.name, elapsed.Nanoseconds())
		if !errors.Is(err, backends.ErrLocked) {
			return fmt.Errorf("%s on a locked collection: %v, want ErrLocked", c.name, err)
		}
		if !strings.Contains(err.Error(), "locked") {
			return fmt.Errorf("%s: message %q does not say the collection is locked", c.name, err)
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
	if err != nil || !strings.Contains(string(out), "\nOK\n") && !strings.HasPrefix(string(out), "OK\n") {
		t.Fatalf("child %s failed: %v", mode, err)
	}
	return string(out)
}

// reportElapsed reports the fastest and slowest ELAPSED figure a child
// printed, in microseconds, as the figures set name.
func reportElapsed(t *testing.T, name, out string) {
	t.Helper()
	f := figures.New(name)
	f.Declare("calls", "fastest_us", "slowest_us", "fastest_ms", "slowest_ms")
	fastest := time.Duration(-1)
	for _, l := range strings.Split(out, "\n") {
		var call string
		var ns int64
		if _, err := fmt.Sscanf(l, "ELAPSED %s %d", &call, &ns); err == nil {
			f.Inc("calls")
			if fastest < 0 || time.Duration(ns) < fastest {
				fastest = time.Duration(ns)
			}
			f.Max("slowest_us", ns/1000)
			f.Max("slowest_ms", ns/1000000)
		}
	}
	f.Add("fastest_us", fastest.Microseconds())
	f.Add("fastest_ms", fastest.Milliseconds())
	f.Report(t)
}

// maxElapsed returns the longest ELAPSED figure a child printed.
func maxElapsed(t *testing.T, out string) time.Duration {
	t.Helper()
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
// exist, every call fails with ErrUnavailable at once. Needs no service.
func TestNoBus(t *testing.T) {
	out := runChildProcess(t, "nobus", nil,
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "no-such-socket"))
	reportElapsed(t, "keychain/no-bus", out)
	// Generous: it takes well under a millisecond here; the deadline the
	// child sets is 30 s.
	if d := maxElapsed(t, out); d > 2*time.Second || d == 0 {
		t.Fatalf("slowest call without a bus took %v, want under 2 s", d)
	}
}

// TestNoSecretService: a session bus on which nothing provides (or can be
// activated as) org.freedesktop.secrets.
func TestNoSecretService(t *testing.T) {
	requireTools(t, "dbus-run-session")
	conf := filepath.Join(t.TempDir(), "session.conf")
	// A session bus configuration without <standard_session_servicedirs/>:
	// no service can be activated on it.
	const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(conf, []byte(busConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runChildProcess(t, "noservice", []string{"dbus-run-session", "--config-file=" + conf, "--"}, privateXDG(t)...)
	if !strings.Contains(out, "no Secret Service on the D-Bus session bus") {
		t.Fatalf("errors do not say what is missing")
	}
	if d := maxElapsed(t, out); d > 2*time.Second || d == 0 {
		t.Fatalf("slowest call without a Secret Service took %v, want under 2 s", d)
	}
}

// TestActivatedWithoutCollection: a standard session bus that activates
// gnome-keyring on demand, with no login keyring unlocked (a headless
// session that never logged in): ErrLocked, fast.
func TestActivatedWithoutCollection(t *testing.T) {
	requireTools(t, "dbus-run-session", "gnome-keyring-daemon")
	out := runChildProcess(t, "activated", []string{"dbus-run-session", "--"}, privateXDG(t)...)
	if d := maxElapsed(t, out); d > 5*time.Second || d == 0 {
		t.Fatalf("slowest call took %v, want under 5 s", d)
	}
}

// TestLockedCollection: a real gnome-keyring whose login collection was
// locked after use.
func TestLockedCollection(t *testing.T) {
	requireTools(t, "dbus-run-session", "gnome-keyring-daemon", "dbus-send")
	out := runChildProcess(t, "locked", []string{"dbus-run-session", "--"}, privateXDG(t)...)
	reportElapsed(t, "keychain/locked", out)
}
