package tpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
)

// open reports that this package talks to a TPM only through a Linux
// device or a Unix socket: Windows' TBS is not supported yet.
func open(path string) (transport.TPMCloser, error) {
	return nil, &Error{Op: "open", Device: path, Step: "find the TPM", Err: fmt.Errorf("%w: %w", ErrUnavailable, errors.New("TPM access is not supported on Windows"))}
}
