package keyring

import (
	"bytes"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
)

// openKeyCtl opens a fresh named keyring under the user keyring (@u) and,
// when t ends, unlinks it: 99designs/keyring leaves it linked after its
// last key is removed.
func openKeyCtl(t *testing.T) (*Keyring, string) {
	t.Helper()
	name := "sessionvault-" + uniq()
	k := openT(t, Config{AllowedBackends: []BackendType{KeyCtlBackend}, KeyCtlScope: "user", ServiceName: name})
	t.Cleanup(func() { unlinkKeyring(t, name) })
	return k, name
}

// unlinkKeyring unlinks the named keyring from @u and checks that it is
// gone.
func unlinkKeyring(t testing.TB, name string) {
	t.Helper()
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "keyring", name, 0)
	if err != nil {
		t.Errorf("cleanup: keyring %q not found under @u: %v", name, err)
		return
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); err != nil {
		t.Errorf("cleanup: unlink keyring %q: %v", name, err)
	}
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "keyring", name, 0); err == nil {
		t.Errorf("cleanup: keyring %q still linked under @u", name)
	}
}

func TestConformanceKeyCtl(t *testing.T) {
	requireKeyCtl(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		k, _ := openKeyCtl(t)
		b, err := k.Backend("ns")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cleanBackend(t, b) }) // runs before the unlink
		return b
	}, backendtest.Config{
		MaxBlobSize: keyCtlMaxValue - 20,
		Timeout:     time.Minute,
	})
}

func TestKeyStoreKeyCtl(t *testing.T) {
	requireKeyCtl(t)
	k, name := openKeyCtl(t)
	testKeyStore(t, k)

	// The key is where the documentation says: a "user" key named by the
	// account in the named keyring, holding "svK1" || key. keyctl reads it.
	ctx := t.Context()
	account := "vault/kek"
	key := bytes.Repeat([]byte{0x5a}, 32)
	if err := k.PutKey(ctx, account, key); err != nil {
		t.Fatal(err)
	}
	defer k.DeleteKey(ctx, account)
	ring, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "keyring", name, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("keyctl", "search", strconv.Itoa(ring), "user", account).Output()
	if err != nil {
		t.Fatalf("keyctl search: %v", err)
	}
	raw, err := exec.Command("keyctl", "pipe", strings.TrimSpace(string(out))).Output()
	if err != nil || !bytes.Equal(raw, append([]byte("svK1"), key...)) {
		t.Fatalf("keyctl pipe = %x, %v; want svK1||key", raw, err)
	}
}

// The kernel refuses what the kernel refuses: a value over the kernel's own
// limit for a user key never reaches it (ErrTooLarge first).
func TestKeyCtlOversize(t *testing.T) {
	requireKeyCtl(t)
	k, _ := openKeyCtl(t)
	b, err := k.Backend("ns")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Put(t.Context(), "big", make([]byte, 32<<10), backends.Absent)
	if !errors.Is(err, backends.ErrTooLarge) {
		t.Fatalf("Put of 32 KiB: %v, want ErrTooLarge", err)
	}
}
