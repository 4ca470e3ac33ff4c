//go:build !windows

package tpm

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

// open opens the TPM at path: a character device (the kernel's driver or
// resource manager), or a Unix socket (a software TPM such as swtpm).
// A path that does not exist or is neither fails at once with
// ErrUnavailable.
func open(path string) (transport.TPMCloser, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Op: "open", Device: path, Step: "find the TPM", Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	var t transport.TPMCloser
	switch m := fi.Mode(); {
	case m&fs.ModeSocket != 0:
		t, err = linuxudstpm.Open(path)
	case m&fs.ModeCharDevice != 0:
		t, err = linuxtpm.Open(path)
	default:
		return nil, &Error{Op: "open", Device: path, Step: "find the TPM", Err: fmt.Errorf("%w: %s is neither a TPM device nor a Unix socket (mode %s)", ErrUnavailable, path, m)}
	}
	if err != nil {
		return nil, &Error{Op: "open", Device: path, Step: "open the TPM", Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	return unavailableOnError{t}, nil
}
