package tpm

import "time"

// Limits of this package, in one place, each with its reason.
const (
	// opTimeout bounds one Seal, Unseal or Probe when the caller's
	// context has no deadline: a real TPM answers each command in
	// milliseconds to a few hundred (RSA key generation aside, which this
	// package never asks for), so 30 s means it is not answering.
	opTimeout = 30 * time.Second

	// maxPCRs is the number of PCRs of a PC Client TPM (0 to 23).
	maxPCRs = 24

	// maxSelectedPCRs bounds WithPCRs: TPM2_PCRRead returns at most 8
	// digests per call, and Seal reads them in one.
	maxSelectedPCRs = 8

	// pcrSelectSize is the PCR bitmap size in a selection: 3 bytes, for
	// 24 PCRs.
	pcrSelectSize = maxPCRs / 8

	// maxSecretSize is the most a sealed data object holds (the TPM's
	// MAX_SYM_DATA, 128 bytes); the vault seals 32.
	maxSecretSize = 128

	// maxAreaSize bounds the public and the private area in sealed
	// bytes (each a TPM2B, whose size field is 16 bits): 512 bytes, above
	// the ~80-byte public and ~130-byte private area of a sealed object
	// with a SHA-256 name, well under vault.MaxSealedKeySize for both.
	maxAreaSize = 512
)
