package vault

import (
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
)

// sentinel is an error category. also, when set, is a category from
// package backends that this one also matches, so that callers written
// against either package see the same errors.
type sentinel struct {
	msg  string
	also error
}

func (e *sentinel) Error() string { return e.msg }

func (e *sentinel) Is(target error) bool { return e.also != nil && target == e.also }

// Error categories. Match them with errors.Is; the typed errors below carry
// the detail and unwrap to one of these.
var (
	// ErrWrongKey: no key slot opens with the given passphrase or
	// keychain key (or none was given). Never returned for damaged data.
	ErrWrongKey error = &sentinel{msg: "vault: wrong passphrase or key"}

	// ErrCorrupt: the bytes are damaged or were tampered with: a bad
	// structure or checksum, a header MAC or a payload tag that fails
	// after a key slot opened, a session sealed for another name or
	// vault. Never returned for a wrong passphrase.
	ErrCorrupt error = &sentinel{msg: "vault: corrupt or tampered data"}

	// ErrUnsupportedVersion: the format version is not one this package
	// reads.
	ErrUnsupportedVersion error = &sentinel{msg: "vault: unsupported format version"}

	// ErrPolicy: a passphrase slot's argon2id parameters are outside the
	// KDF policy. Such errors also match kdf.ErrOutOfPolicy.
	ErrPolicy error = &sentinel{msg: "vault: KDF parameters out of policy"}

	// ErrTooLarge: a blob or plaintext exceeds the format's caps. It also
	// matches backends.ErrTooLarge.
	ErrTooLarge error = &sentinel{msg: "vault: too large", also: backends.ErrTooLarge}

	// ErrNotFound: no vault header, or no session by that name. It also
	// matches backends.ErrNotFound.
	ErrNotFound error = &sentinel{msg: "vault: not found", also: backends.ErrNotFound}

	// ErrClosed: the Vault was closed.
	ErrClosed error = &sentinel{msg: "vault: closed"}

	// ErrExists: Create found a vault (or sessions) already there.
	ErrExists error = &sentinel{msg: "vault: already exists"}

	// ErrLastSlot: RemoveSlot would remove the only key slot, leaving a
	// vault nobody can open.
	ErrLastSlot error = &sentinel{msg: "vault: cannot remove the last key slot"}
)

// FormatError reports bytes that are not a valid v1 structure (or are a
// version this package does not read, or are too large). It unwraps to
// ErrCorrupt, ErrUnsupportedVersion or ErrTooLarge.
//
// A zero FormatError is not a meaningful error: the package makes them.
type FormatError struct {
	Structure string // "header" or "session"
	Name      string // the session name, for sessions
	Field     string // the field that is wrong, e.g. "checksum", "slot 1 type"
	Reason    string // what is wrong with it
	Err       error  // the category
}

func (e *FormatError) Error() string {
	what := e.Structure
	if e.Name != "" {
		what = fmt.Sprintf("session %q", e.Name)
	}
	return fmt.Sprintf("%s: %s: %s: %s", e.Err, what, e.Field, e.Reason)
}

// Unwrap returns the category.
func (e *FormatError) Unwrap() error { return e.Err }

// SlotError reports a key slot that could not be used. It unwraps to
// ErrWrongKey (the key does not fit the slot), ErrCorrupt (the key fits
// but the slot's wrapped keys or the header MAC fail), ErrPolicy, or the
// key store's error.
//
// A zero SlotError is not a meaningful error: the package makes them.
type SlotError struct {
	Slot   SlotID
	Kind   SlotKind
	Reason string
	Err    error
}

func (e *SlotError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("vault: %s slot %s: %s", e.Kind, e.Slot, e.Reason)
	}
	return fmt.Sprintf("vault: %s slot %s: %s: %v", e.Kind, e.Slot, e.Reason, e.Err)
}

// Unwrap returns the category or cause.
func (e *SlotError) Unwrap() error { return e.Err }

// PolicyError reports a passphrase slot whose argon2id parameters the
// policy refuses, or passphrase slots that together cost more than the
// policy's kdf.Budget. It matches ErrPolicy and kdf.ErrOutOfPolicy, and
// errors.As finds the *kdf.ParamError or *kdf.BudgetError in it.
//
// A zero PolicyError is not a meaningful error: the package makes them.
type PolicyError struct {
	Slot SlotID // zero for a budget refusal, which is about all the slots
	Err  error  // the *kdf.ParamError or *kdf.BudgetError
}

func (e *PolicyError) Error() string {
	var be *kdf.BudgetError
	if errors.As(e.Err, &be) {
		return fmt.Sprintf("vault: passphrase slots: %v: %s", e.Err, budgetHint(be))
	}
	return fmt.Sprintf("vault: passphrase slot %s: %v", e.Slot, e.Err)
}

// Unwrap returns ErrPolicy and the kdf error.
func (e *PolicyError) Unwrap() []error { return []error{ErrPolicy, e.Err} }

// corrupt returns a *FormatError for the header that matches ErrCorrupt.
func corruptHeader(field, reason string) error {
	return &FormatError{Structure: "header", Field: field, Reason: reason, Err: ErrCorrupt}
}

// notFound wraps a backend's not-found error so that it matches both
// ErrNotFound and the backend's own error.
func notFound(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrNotFound, what, err)
}

// isConflict reports a backend version conflict.
func isConflict(err error) bool { return errors.Is(err, backends.ErrConflict) }
