package tpm

import (
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/vault"
)

// sentinel is an error category; also, when set, is a vault category
// that it matches too.
type sentinel struct {
	msg  string
	also error
}

func (e *sentinel) Error() string { return e.msg }

func (e *sentinel) Is(target error) bool { return e.also != nil && target == e.also }

// Error categories. Match them with errors.Is; *Error carries the detail.
var (
	// ErrUnavailable: there is no TPM at the device path, it cannot be
	// opened, or it did not answer in time.
	ErrUnavailable error = &sentinel{msg: "tpm: unavailable"}

	// ErrNotThisTPM: the sealed object does not load in this TPM: it was
	// sealed by another TPM, or before this one's owner hierarchy was
	// cleared (a TPM clear, a new swtpm state). It also matches
	// vault.ErrWrongKey.
	ErrNotThisTPM error = &sentinel{msg: "tpm: sealed by another TPM, or before this TPM was cleared", also: vault.ErrWrongKey}

	// ErrPCRMismatch: the PCRs the key was sealed to hold other values
	// than at Seal (another boot chain, a changed Secure Boot state, or
	// an extended PCR). It also matches vault.ErrWrongKey.
	ErrPCRMismatch error = &sentinel{msg: "tpm: the PCRs differ from those the key was sealed to", also: vault.ErrWrongKey}

	// ErrMalformed: the sealed bytes are not a key this package sealed.
	// It also matches vault.ErrCorrupt.
	ErrMalformed error = &sentinel{msg: "tpm: malformed sealed key", also: vault.ErrCorrupt}
)

// Error reports a failed TPM operation. It unwraps to a category above
// (when one applies) and to the TPM's response code (a tpm2.TPMRC) or
// the transport's error.
//
// A zero Error is not a meaningful error: the Sealer makes them.
type Error struct {
	Op     string // "seal", "unseal", "probe", "open"
	Device string // the device path, when known
	Step   string // what was being done
	Err    error
}

func (e *Error) Error() string {
	dev := ""
	if e.Device != "" {
		dev = " " + e.Device
	}
	return fmt.Sprintf("tpm: %s%s: %s: %v", e.Op, dev, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// classify fills in the device of an *Error from op.
func classify(op, device string, err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		if te.Device == "" {
			te.Device = device
		}
		return err
	}
	if errors.Is(err, ErrMalformed) {
		return err
	}
	return &Error{Op: op, Device: device, Step: "talk to the TPM", Err: err}
}
