//go:build !darwin && !windows

package keychain

import (
	"errors"
	"net"
	"os/exec"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// classifyPlatform maps the Secret Service's errors, as go-keyring passes
// them on from github.com/godbus/dbus/v5.
func classifyPlatform(err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.Secret.Error.IsLocked":
			return &secretstore.StoreError{Kind: backends.ErrLocked, Msg: "the Secret Service collection is locked", Err: err}
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
			"org.freedesktop.DBus.Error.Spawn.ExecFailed", "org.freedesktop.DBus.Error.Spawn.ChildExited":
			return &secretstore.StoreError{Kind: backends.ErrUnavailable, Msg: "no Secret Service on the D-Bus session bus", Err: err}
		case "org.freedesktop.DBus.Error.AccessDenied":
			return &secretstore.StoreError{Kind: backends.ErrPermission, Msg: "the Secret Service refused access", Err: err}
		}
		return &secretstore.StoreError{Kind: backends.ErrUnavailable, Msg: "Secret Service error", Err: err}
	}
	// go-keyring reports an Unlock that did not unlock (the prompt was
	// dismissed, or there is no default collection) only in this message.
	if strings.HasPrefix(err.Error(), "failed to unlock correct collection") {
		return &secretstore.StoreError{Kind: backends.ErrLocked,
			Msg: "the Secret Service collection is locked and was not unlocked (no prompt could be shown, or it was dismissed)", Err: err}
	}
	var ne *net.OpError
	var ee *exec.Error
	if errors.As(err, &ne) || errors.As(err, &ee) || strings.HasPrefix(err.Error(), "dbus: ") {
		return &secretstore.StoreError{Kind: backends.ErrUnavailable,
			Msg: "no D-Bus session bus (is DBUS_SESSION_BUS_ADDRESS set and a Secret Service running?)", Err: err}
	}
	return &secretstore.StoreError{Kind: backends.ErrUnavailable, Err: err}
}
