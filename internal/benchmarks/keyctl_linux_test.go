package benchmarks

import (
	"testing"

	"golang.org/x/sys/unix"
)

// unlinkUserKeyring unlinks the keyring called name from the user keyring
// (@u): 99designs' KeyCtlBackend creates it there and leaves it linked.
func unlinkUserKeyring(tb testing.TB, name string) {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "keyring", name, 0)
	if err != nil {
		tb.Logf("keyring %q not found for cleanup: %v", name, err)
		return
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); err != nil {
		tb.Errorf("unlink keyring %q: %v", name, err)
	}
}
