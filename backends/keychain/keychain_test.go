package keychain

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		os.Exit(runChild(child))
	}
	code := m.Run()
	if code == 0 && os.Getenv("SESSIONVAULT_SECRET_SERVICE") != "" {
		if left := leftovers(); left != "" {
			fmt.Fprintf(os.Stderr, "keychain tests left entries in the Secret Service:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists, with secret-tool, the entries of service Service whose
// account carries this run's runID.
func leftovers() string {
	out, err := exec.Command("secret-tool", "search", "--all", "--unlock", "service", Service).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "" // nothing found: secret-tool exits 1
	}
	var left []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "attribute.username = ") && strings.Contains(l, runID) {
			left = append(left, strings.TrimPrefix(l, "attribute.username = "))
		}
	}
	return strings.Join(left, "\n")
}

func newTestKeychain(t testing.TB, opts ...Option) *Keychain {
	t.Helper()
	k, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestBackend returns an empty Backend in a fresh namespace and deletes
// everything in it when t ends.
func newTestBackend(t *testing.T) backends.Backend {
	t.Helper()
	k := newTestKeychain(t)
	b, err := k.Backend(uniq())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanBackend(t, b) })
	return b
}

// cleanBackend deletes every blob of b, the header and (through them) the
// index, and checks that the index entry is gone.
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

func TestConformance(t *testing.T) {
	requireSecretService(t)
	k := newTestKeychain(t)
	probe, err := k.Backend("probe")
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, newTestBackend, backendtest.Config{
		MaxBlobSize: probe.MaxBlobLen("x"),
		// Each Put is three D-Bus round trips under one write lock.
		Writers:    4,
		Increments: 5,
		Timeout:    time.Minute,
	})
}

func TestKeyStore(t *testing.T) {
	requireSecretService(t)
	ctx := t.Context()
	k := newTestKeychain(t)
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
		key[i] = byte(i * 37) // includes 0x00 and bytes >= 0x80
	}
	if err := k.PutKey(ctx, account, key); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	got, err := k.GetKey(ctx, account)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("GetKey = %x, %v; want %x", got, err, key)
	}

	// The entry is where the documentation says, in the documented shape:
	// service "sessionvault", account "<vault id>/<key id>", base64 of
	// "svK1" || key. secret-tool reads it through the real daemon.
	out, err := exec.Command("secret-tool", "lookup", "service", Service, "username", account).Output()
	if err != nil {
		t.Fatalf("secret-tool lookup: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	if err != nil || !bytes.Equal(raw, append([]byte("svK1"), key...)) {
		t.Fatalf("stored entry decodes to %x (%v), want svK1||key", raw, err)
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

func TestKeyStoreRefusals(t *testing.T) {
	// No keychain call is made for any of these: they run everywhere.
	ctx := t.Context()
	k, err := newKeychain(config{service: Service, timeout: time.Second, p: mustNotCall{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, account := range []string{"", "novault", "/key", "vault/", "a/b/c", "../x", "v/..", "v/k\x00", "v/k\n", "v /k", "v/" + strings.Repeat("k", 129)} {
		if err := k.PutKey(ctx, account, []byte("k")); !errors.Is(err, backends.ErrInvalidName) {
			t.Errorf("PutKey(%q): %v, want ErrInvalidName", account, err)
		}
		if _, err := k.GetKey(ctx, account); !errors.Is(err, backends.ErrInvalidName) {
			t.Errorf("GetKey(%q): %v, want ErrInvalidName", account, err)
		}
		if err := k.DeleteKey(ctx, account); !errors.Is(err, backends.ErrInvalidName) {
			t.Errorf("DeleteKey(%q): %v, want ErrInvalidName", account, err)
		}
	}
	for _, n := range []int{0, secretstore.MaxKeyLen + 1, 1 << 20} {
		if err := k.PutKey(ctx, "v/k", make([]byte, n)); !errors.Is(err, backends.ErrTooLarge) {
			t.Errorf("PutKey of %d bytes: %v, want ErrTooLarge", n, err)
		}
	}
	for _, s := range []string{"", "a b", "a/b", strings.Repeat("s", maxServiceLen+1)} {
		if _, err := New(WithService(s)); err == nil {
			t.Errorf("New(WithService(%q)) succeeded", s)
		}
	}
}

// mustNotCall is a provider that fails the test when called: it proves a
// refusal happens before any keychain call.
type mustNotCall struct{ t *testing.T }

func (p mustNotCall) Get(service, user string) (string, error) {
	p.t.Errorf("keychain Get(%q, %q) called", service, user)
	return "", errors.New("must not be called")
}

func (p mustNotCall) Set(service, user, _ string) error {
	p.t.Errorf("keychain Set(%q, %q) called", service, user)
	return errors.New("must not be called")
}

func (p mustNotCall) Delete(service, user string) error {
	p.t.Errorf("keychain Delete(%q, %q) called", service, user)
	return errors.New("must not be called")
}

func TestMalformedEntries(t *testing.T) {
	requireSecretService(t)
	ctx := t.Context()
	k := newTestKeychain(t)
	ns := uniq()
	b, err := k.Backend(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanBackend(t, b) })
	account := uniq() + "/kek"

	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name, value string
	}{
		{"not base64", "this is not base64!"},
		{"foreign secret", b64("hunter2")},
		{"wrong magic", b64("svX1xxxxxxxxxxxxxxxxxxxx")},
		{"key entry with no key", b64("svK1")},
		{"oversized", base64.StdEncoding.EncodeToString(make([]byte, secretServiceMaxValue+1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storeRaw(t, account, c.value)
			_, err := k.GetKey(ctx, account)
			if !errors.Is(err, secretstore.ErrMalformed) {
				t.Fatalf("GetKey: %v, want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q quotes the entry", err)
			}

			storeRaw(t, "blobs/"+ns+"/sess", c.value)
			if _, _, err := b.Get(ctx, "sess"); !errors.Is(err, secretstore.ErrMalformed) {
				t.Fatalf("Get: %v, want ErrMalformed", err)
			}
			// A compare-and-set over an entry we cannot read changes nothing.
			if _, err := b.Put(ctx, "sess", []byte("new"), backends.Absent); !errors.Is(err, secretstore.ErrMalformed) {
				t.Fatalf("Put over a malformed entry: %v, want ErrMalformed", err)
			}

			storeRaw(t, "blobs/"+ns+"/.index", c.value)
			if _, err := b.List(ctx); !errors.Is(err, secretstore.ErrMalformed) {
				t.Fatalf("List with a malformed index: %v, want ErrMalformed", err)
			}
			if _, err := b.Put(ctx, "other", []byte("new"), backends.Absent); !errors.Is(err, secretstore.ErrMalformed) {
				t.Fatalf("Put with a malformed index: %v, want ErrMalformed", err)
			}
			if _, _, err := b.Get(ctx, "other"); !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get after a refused Put: %v, want ErrNotFound", err)
			}
		})
	}
	// An index naming an invalid name is refused too.
	storeRaw(t, "blobs/"+ns+"/.index", b64("svI1../etc\n"))
	if _, err := b.List(ctx); !errors.Is(err, secretstore.ErrMalformed) {
		t.Fatalf("List with a hostile index: %v, want ErrMalformed", err)
	}
}

// storeRaw writes value under account with secret-tool, as another program
// would, and removes it when t ends.
func storeRaw(t *testing.T, account, value string) {
	t.Helper()
	cmd := exec.Command("secret-tool", "store", "--label=sessionvault test", "service", Service, "username", account)
	cmd.Stdin = strings.NewReader(value)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("secret-tool", "clear", "service", Service, "username", account).Run() })
}
