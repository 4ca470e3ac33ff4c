package tpm

import (
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// open opens the TPM through Windows' TPM Base Services (tbs.dll, go-tpm's
// windowstpm transport) when path is WindowsDevice or DefaultDevice.
// Windows has no TPM device files and no Unix-socket software TPMs this
// package can reach, so any other path fails with ErrUnavailable, as does
// a machine without a TPM 2.0 or with TBS turned off.
func open(path string) (transport.TPMCloser, error) {
	if !strings.EqualFold(path, WindowsDevice) && path != DefaultDevice {
		return nil, &Error{Op: "open", Device: path, Step: "find the TPM",
			Err: fmt.Errorf("%w: on Windows the TPM is reached through TBS: use the device %q", ErrUnavailable, WindowsDevice)}
	}
	t, err := windowstpm.Open()
	if err != nil {
		// windowstpm.Open can return a transport with an error (a failed
		// TBS context); it is not used.
		return nil, &Error{Op: "open", Device: path, Step: "open the TPM", Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	return unavailableOnError{t}, nil
}
