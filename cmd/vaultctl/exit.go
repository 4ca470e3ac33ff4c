package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/vault"
)

// Exit codes. They are part of the command-line contract (scripts and
// outside tests rely on them): never renumber one.
const (
	exitOK         = 0 // success
	exitError      = 1 // any other error
	exitUsage      = 2 // bad command line, or a required input is missing
	exitNotFound   = 3 // no vault, or no session by that name
	exitWrongKey   = 4 // wrong passphrase or key
	exitCorrupt    = 5 // corrupt or tampered data
	exitKeychain   = 6 // keychain or TPM unavailable, keychain locked
	exitPermission = 7 // unsafe permissions or a symlink
)

// usageError is a bad command line. Its message already says what to do.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// keychainError marks an error that came from the OS keychain (rather
// than from the storage backend), so that "unavailable" maps to exit 6
// for a keychain but not for, say, a Redis server that is down.
type keychainError struct{ err error }

func (e *keychainError) Error() string { return e.err.Error() }
func (e *keychainError) Unwrap() error { return e.err }

// hintError attaches the next step for the operator to an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + ": " + e.hint }
func (e *hintError) Unwrap() error { return e.err }

// withHint returns err with hint appended to its message; nil stays nil.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// msgError replaces the message of an error it still unwraps to, for the
// few outcomes where the library's detail is noise to an operator
// ("vault: passphrase slot 0a1b...: the key does not fit this slot").
type msgError struct {
	msg string
	err error
}

func (e *msgError) Error() string { return e.msg }
func (e *msgError) Unwrap() error { return e.err }

// notFoundf is a "not found" (exit 3) with a message of its own.
func notFoundf(format string, args ...any) error {
	return &msgError{msg: fmt.Sprintf(format, args...), err: backends.ErrNotFound}
}

// codedError forces an exit code, for outcomes that are not errors of a
// library call (verify finding a damaged session it could not repair).
type codedError struct {
	err  error
	code int
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// exitCode maps an error to the process exit code. The order matters:
// a symlinked header is a permission problem even though reading it
// also failed, and a keychain that is unavailable is exit 6 even if
// the vault then reports that no slot could be unlocked.
func exitCode(err error) int {
	var ue *usageError
	var ce *codedError
	var ke *keychainError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue), errors.Is(err, backends.ErrInvalidName):
		return exitUsage
	case errors.Is(err, backends.ErrPermission):
		return exitPermission
	case errors.As(err, &ke) && !errors.Is(err, vault.ErrWrongKey):
		return exitKeychain
	case errors.Is(err, vault.ErrWrongKey):
		return exitWrongKey
	case errors.Is(err, vault.ErrCorrupt),
		errors.Is(err, vault.ErrRollback), // tampered with: an older copy put back
		errors.Is(err, vault.ErrUnsupportedVersion),
		errors.Is(err, vault.ErrPolicy):
		return exitCorrupt
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, backends.ErrNotFound):
		return exitNotFound
	case errors.Is(err, fs.ErrNotExist):
		// A missing input file (import FILE, --passphrase-file).
		return exitNotFound
	}
	return exitError
}

// errorKind names the exit code in --json error documents.
func errorKind(code int) string {
	switch code {
	case exitUsage:
		return "usage"
	case exitNotFound:
		return "not_found"
	case exitWrongKey:
		return "wrong_key"
	case exitCorrupt:
		return "corrupt"
	case exitKeychain:
		return "keychain_unavailable" // also a TPM: the kind is a contract
	case exitPermission:
		return "unsafe_permissions"
	}
	return "error"
}

// oneLine flattens an error message to a single line: errors.Join and
// some libraries put newlines in messages, and the contract is one line
// on stderr.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "; ")
	s = strings.ReplaceAll(s, "\n", "; ")
	return s
}

// isCanceled reports whether err is the context ending (an interrupt).
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled)
}
