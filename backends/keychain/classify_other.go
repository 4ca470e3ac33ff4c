//go:build darwin || windows

package keychain

import (
	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// classifyPlatform takes every other error of the macOS keychain (an exit
// status of /usr/bin/security) and the Windows Credential Manager (a
// syscall error) as the keychain being unavailable, with the cause.
func classifyPlatform(err error) error {
	return &secretstore.StoreError{Kind: backends.ErrUnavailable, Err: err}
}
