package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sessionvault/sessionvault/backends/tpm"
	"github.com/sessionvault/sessionvault/vault"
)

// tpmDeviceEnv is read when --tpm-device is not given.
const tpmDeviceEnv = "VAULTCTL_TPM_DEVICE"

// tpmDevice returns the TPM device: --tpm-device, $VAULTCTL_TPM_DEVICE,
// else /dev/tpmrm0. A Unix socket there is a software TPM (swtpm).
func (a *app) tpmDevice() string {
	if a.tpmDev != "" {
		return a.tpmDev
	}
	if d := a.getenv(tpmDeviceEnv); d != "" {
		return d
	}
	return tpm.DefaultDevice
}

// sealer returns the TPM sealer, bound to pcrs when sealing a new slot.
// Its errors are marked as key-source errors, so that a TPM that is
// missing exits 6 like a keychain that is.
func (a *app) sealer(pcrs []int) (vault.KEKSealer, error) {
	var opts []tpm.Option
	if len(pcrs) > 0 {
		opts = append(opts, tpm.WithPCRs(pcrs...))
	}
	s, err := tpm.New(a.tpmDevice(), opts...)
	if err != nil {
		return nil, usagef("--tpm-pcrs: %v", err)
	}
	return &cliSealer{s: s}, nil
}

type cliSealer struct{ s *tpm.Sealer }

func (c *cliSealer) wrap(err error) error {
	if err == nil || errors.Is(err, vault.ErrWrongKey) || errors.Is(err, vault.ErrCorrupt) {
		return err
	}
	return &keychainError{err: err}
}

func (c *cliSealer) Seal(ctx context.Context, kek []byte) ([]byte, error) {
	b, err := c.s.Seal(ctx, kek)
	return b, c.wrap(err)
}

func (c *cliSealer) Unseal(ctx context.Context, sealed []byte) ([]byte, error) {
	k, err := c.s.Unseal(ctx, sealed)
	return k, c.wrap(err)
}

// parsePCRs parses --tpm-pcrs: a comma-separated list of PCR numbers
// ("7" or "0,2,7"); "" is none.
func parsePCRs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, usagef("--tpm-pcrs %q: want PCR numbers separated by commas, such as 7 or 0,2,7", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// tpmSlotText describes a TPM slot's sealed key for status.
func tpmSlotText(sealed []byte) (pcrs []int, text string) {
	in, err := tpm.Describe(sealed)
	if err != nil {
		return nil, "sealed key unreadable: " + oneLine(err.Error())
	}
	if len(in.PCRs) == 0 {
		return in.PCRs, "sealed to the TPM (" + in.Parent + "), no PCRs"
	}
	s := make([]string, len(in.PCRs))
	for i, p := range in.PCRs {
		s[i] = strconv.Itoa(p)
	}
	return in.PCRs, fmt.Sprintf("sealed to the TPM (%s), SHA-256 PCRs %s", in.Parent, strings.Join(s, ","))
}

// tpmHint is the operator's next step when the TPM slot did not open.
func tpmHint(err error) string {
	switch {
	case errors.Is(err, tpm.ErrPCRMismatch):
		return "the TPM's PCRs changed since the TPM slot was made (another boot chain or firmware): open with the recovery passphrase, then 'vaultctl passwd --tpm' seals a new slot to the current state"
	case errors.Is(err, tpm.ErrNotThisTPM):
		return "the TPM slot was sealed by another TPM, or this TPM was cleared: open with the recovery passphrase, then 'vaultctl passwd --tpm' seals a new slot"
	case errors.Is(err, tpm.ErrUnavailable):
		return "the TPM is unavailable: check --tpm-device or $" + tpmDeviceEnv + ", or open with the passphrase"
	}
	return ""
}

func nonNilInts(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
