//go:build linux

package keyring

import (
	"errors"
	"syscall"

	"github.com/godbus/dbus"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// classifyPlatform maps the errors of the Linux backends: D-Bus errors of
// the Secret Service and KWallet (github.com/godbus/dbus, as
// 99designs/keyring uses it) and the kernel keyring's errnos. It returns
// nil for anything else.
func classifyPlatform(err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.Secret.Error.IsLocked":
			return &secretstore.StoreError{Kind: backends.ErrLocked, Msg: "the Secret Service collection is locked", Err: err}
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return &secretstore.StoreError{Kind: backends.ErrUnavailable, Msg: "no Secret Service on the D-Bus session bus", Err: err}
		}
		return &secretstore.StoreError{Kind: backends.ErrUnavailable, Msg: "D-Bus error", Err: err}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOKEY, syscall.EKEYEXPIRED, syscall.EKEYREVOKED:
			return &secretstore.StoreError{Kind: backends.ErrNotFound, Err: err}
		case syscall.EDQUOT:
			return &secretstore.StoreError{Kind: backends.ErrTooLarge,
				Msg: "kernel key quota exceeded (kernel.keys.maxbytes / maxkeys)", Err: err}
		case syscall.EACCES, syscall.EPERM:
			return &secretstore.StoreError{Kind: backends.ErrPermission, Msg: "the kernel keyring refused access", Err: err}
		case syscall.ENOSYS:
			return &secretstore.StoreError{Kind: backends.ErrUnavailable,
				Msg: "no kernel keyring (keyctl blocked, e.g. by a container's seccomp profile)", Err: err}
		}
	}
	return nil
}
