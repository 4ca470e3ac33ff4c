// Package permissions checks that a vault folder is private and that every
// unsafe state of one is refused: under umask 000 every file is created
// 0600 and every folder 0700; a file readable by others, a folder open to
// others, a folder owned by another user and a symbolic link at each path
// are refused by the library with a typed error (backends.ErrPermission)
// whose message says how to fix it, and by vaultctl with exit code 7.
//
// The package has no API; its tests are the harness (the foreign-owner
// case needs root, as CI runs):
//
//	go test ./internal/permissions
package permissions
