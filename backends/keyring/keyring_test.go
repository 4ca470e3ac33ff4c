package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	kr "github.com/99designs/keyring"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		os.Exit(runChild(child))
	}
	code := m.Run()
	if code == 0 {
		if left := leftovers(); left != "" {
			fmt.Fprintf(os.Stderr, "keyring tests left entries behind:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists what this run left in the Secret Service's login
// collection (items whose label, the account, carries runID) and in the
// kernel user keyring (keyrings or keys whose description does), asking
// the real services with dbus-send and keyctl.
func leftovers() string {
	var left []string
	if os.Getenv("SESSIONVAULT_SECRET_SERVICE") != "" {
		items, err := dbusGet("/org/freedesktop/secrets/collection/login", "org.freedesktop.Secret.Collection", "Items")
		if err != nil {
			return "cannot list the login collection: " + err.Error()
		}
		for _, l := range strings.Split(items, "\n") {
			path, ok := strings.CutPrefix(strings.TrimSpace(l), "object path ")
			if !ok {
				continue
			}
			label, err := dbusGet(strings.Trim(path, `"`), "org.freedesktop.Secret.Item", "Label")
			if _, label, ok := strings.Cut(label, "string "); err == nil && ok && strings.Contains(label, runID) {
				left = append(left, "secret-service: "+strings.TrimSpace(label))
			}
		}
	}
	if os.Getenv("SESSIONVAULT_KEYCTL") != "" {
		out, _ := exec.Command("keyctl", "show", "@u").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, runID) {
				left = append(left, "keyctl: "+strings.TrimSpace(l))
			}
		}
	}
	return strings.Join(left, "\n")
}

// dbusGet reads a D-Bus property of the Secret Service with dbus-send.
func dbusGet(path, iface, prop string) (string, error) {
	out, err := exec.Command("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets", path,
		"org.freedesktop.DBus.Properties.Get", "string:"+iface, "string:"+prop).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return string(out), nil
}

func openT(t *testing.T, cfg Config, opts ...Option) *Keyring {
	t.Helper()
	k, err := Open(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatalf("Open(%v): %v", cfg.AllowedBackends, err)
	}
	return k
}

// cleanBackend deletes every blob of b and the header (and through them
// the index).
func cleanBackend(t *testing.T, b *secretstore.Backend) {
	t.Helper()
	ctx := context.Background()
	names, err := b.List(ctx)
	if err != nil {
		t.Errorf("cleanup: List: %v", err)
	}
	for _, n := range append(names, backends.HeaderName) {
		if err := b.Delete(ctx, n, backends.Any); err != nil && !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("cleanup: Delete(%q): %v", n, err)
		}
	}
}

// secretServiceConfig is the test daemon's login collection.
func secretServiceConfig() Config {
	return Config{
		AllowedBackends:         []BackendType{SecretServiceBackend},
		ServiceName:             "sessionvault",
		LibSecretCollectionName: "login",
	}
}

func TestConformanceSecretService(t *testing.T) {
	requireSecretService(t)
	k := openT(t, secretServiceConfig())
	probe, err := k.Backend("probe")
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, err := k.Backend(uniq())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cleanBackend(t, b) })
		return b
	}, backendtest.Config{
		MaxBlobSize: probe.MaxBlobLen("x"),
		Writers:     4,
		Increments:  5,
		Timeout:     time.Minute,
	})
}

func testKeyStore(t *testing.T, k *Keyring) {
	ctx := t.Context()
	account := uniq() + "/kek-1"
	t.Cleanup(func() { _ = k.DeleteKey(context.Background(), account) })
	if _, err := k.GetKey(ctx, account); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("GetKey of a missing entry: %v, want ErrNotFound", err)
	}
	if err := k.DeleteKey(ctx, account); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("DeleteKey of a missing entry: %v, want ErrNotFound", err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 37)
	}
	if err := k.PutKey(ctx, account, key); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	if got, err := k.GetKey(ctx, account); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("GetKey = %x, %v; want %x", got, err, key)
	}
	key2 := bytes.Repeat([]byte{0xff}, 32)
	if err := k.PutKey(ctx, account, key2); err != nil {
		t.Fatalf("PutKey (replace): %v", err)
	}
	if got, err := k.GetKey(ctx, account); err != nil || !bytes.Equal(got, key2) {
		t.Fatalf("GetKey after replace = %x, %v", got, err)
	}
	if err := k.DeleteKey(ctx, account); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := k.GetKey(ctx, account); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("GetKey after DeleteKey: %v, want ErrNotFound", err)
	}
}

func TestKeyStoreSecretService(t *testing.T) {
	requireSecretService(t)
	testKeyStore(t, openT(t, secretServiceConfig()))
}

// The 99designs file backend is a real store (jose-encrypted files in a
// folder): it runs everywhere.
func fileConfig(dir, passphrase string) Config {
	return Config{
		AllowedBackends:  []BackendType{FileBackend},
		FileDir:          dir,
		FilePasswordFunc: kr.FixedStringPrompt(passphrase),
	}
}

func TestKeyStoreFile(t *testing.T) {
	testKeyStore(t, openT(t, fileConfig(t.TempDir(), "test passphrase")))
}

func TestConformanceFile(t *testing.T) {
	if testing.Short() {
		t.Skip("PBKDF2 per call: slow")
	}
	k := openT(t, fileConfig(t.TempDir(), "test passphrase"))
	probe, err := k.Backend("probe")
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, err := k.Backend(uniq())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cleanBackend(t, b) })
		return b
	}, backendtest.Config{
		MaxBlobSize: probe.MaxBlobLen("x"),
		Writers:     2,
		Increments:  3,
		Timeout:     2 * time.Minute,
	})
}

func TestFileWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	k := openT(t, fileConfig(dir, "right"))
	if err := k.PutKey(ctx, "vault/kek", make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	k2 := openT(t, fileConfig(dir, "wrong"))
	_, err := k2.GetKey(ctx, "vault/kek")
	if !errors.Is(err, backends.ErrLocked) {
		t.Fatalf("GetKey with the wrong passphrase: %v, want ErrLocked", err)
	}
}

func TestOpenRefusals(t *testing.T) {
	ctx := t.Context()
	for name, cfg := range map[string]Config{
		"no backend":        {},
		"empty list":        {AllowedBackends: []BackendType{}},
		"two backends":      {AllowedBackends: []BackendType{SecretServiceBackend, FileBackend}, FileDir: t.TempDir(), FilePasswordFunc: kr.FixedStringPrompt("x")},
		"unknown backend":   {AllowedBackends: []BackendType{"carrier-pigeon"}},
		"keyctl no scope":   {AllowedBackends: []BackendType{KeyCtlBackend}},
		"keyctl bad scope":  {AllowedBackends: []BackendType{KeyCtlBackend}, KeyCtlScope: "group"},
		"file no dir":       {AllowedBackends: []BackendType{FileBackend}, FilePasswordFunc: kr.FixedStringPrompt("x")},
		"file no passwords": {AllowedBackends: []BackendType{FileBackend}, FileDir: t.TempDir()},
	} {
		_, err := Open(ctx, cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Open: %v, want ErrInvalidConfig", name, err)
		}
	}
}

// A backend that is not there fails Open with ErrUnavailable: it is never
// replaced by another one.
func TestOpenUnavailable(t *testing.T) {
	ctx := t.Context()
	cfgs := []Config{
		{AllowedBackends: []BackendType{WinCredBackend}},
		{AllowedBackends: []BackendType{KeychainBackend}},
		{AllowedBackends: []BackendType{PassBackend}, PassCmd: "sessionvault-no-such-pass"},
	}
	for _, cfg := range cfgs {
		_, err := Open(ctx, cfg)
		if !errors.Is(err, backends.ErrUnavailable) {
			t.Errorf("Open(%v): %v, want ErrUnavailable", cfg.AllowedBackends, err)
		}
		t.Logf("%v", err)
	}
}
