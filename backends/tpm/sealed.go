package tpm

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
)

// sealedVersion is the first byte of the sealed bytes (docs/FORMAT.md,
// "TPM slot"): version 1 is the layout below.
const sealedVersion = 1

// sealedKey is the parsed form of Seal's output:
//
//	version  1 byte   (1)
//	pcrs     3 bytes  bitmap of the SHA-256 PCRs the object is bound to
//	                  (bit i of byte i/8 = PCR i); all zero: no PCRs
//	public   TPM2B_PUBLIC   (2-byte size, then TPMT_PUBLIC)
//	private  TPM2B_PRIVATE  (2-byte size, then the TPM's encrypted blob)
type sealedKey struct {
	pcrs    []int
	public  []byte // the TPM2B, size field included
	private []byte // the TPM2B, size field included
}

func (b *sealedKey) encode() []byte {
	out := []byte{sealedVersion}
	out = append(out, pcrSelection(b.pcrs).PCRSelections[0].PCRSelect...)
	out = append(out, b.public...)
	return append(out, b.private...)
}

// parseSealed checks the sealed bytes' structure and bounds.
func parseSealed(p []byte) (*sealedKey, error) {
	if len(p) < 1+pcrSelectSize {
		return nil, malformed("%d bytes, too short", len(p))
	}
	if p[0] != sealedVersion {
		return nil, malformed("version %d, this package reads version %d", p[0], sealedVersion)
	}
	b := &sealedKey{}
	for i := range maxPCRs {
		if p[1+i/8]&(1<<(i%8)) != 0 {
			b.pcrs = append(b.pcrs, i)
		}
	}
	if len(b.pcrs) > maxSelectedPCRs {
		return nil, malformed("bound to %d PCRs, the most is %d", len(b.pcrs), maxSelectedPCRs)
	}
	rest := p[1+pcrSelectSize:]
	take := func(what string) []byte {
		if rest == nil {
			return nil
		}
		if len(rest) < 2 {
			rest = nil
			return nil
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n == 0 || n > maxAreaSize || 2+n > len(rest) {
			rest = nil
			return nil
		}
		area := append([]byte(nil), rest[:2+n]...)
		rest = rest[2+n:]
		return area
	}
	if b.public = take("public area"); b.public == nil {
		return nil, malformed("public area: bad size")
	}
	if b.private = take("private area"); b.private == nil {
		return nil, malformed("private area: bad size")
	}
	if len(rest) != 0 {
		return nil, malformed("%d unexpected bytes after the private area", len(rest))
	}
	return b, nil
}

// Info describes sealed bytes made by Seal. It holds no secret.
//
// The zero value describes sealed bytes bound to no PCR, with no parent
// named.
type Info struct {
	// PCRs are the SHA-256 PCRs the key is bound to; empty: none.
	PCRs []int
	// Parent names the key the object is sealed under: always the owner
	// hierarchy's storage key made from the TCG ECC P-256 SRK template
	// (recreated on each use, never persistent in the TPM).
	Parent string
}

// Describe reads sealed bytes (vault.SlotInfo.Sealed of a TPM slot)
// without a TPM. It fails with ErrMalformed for bytes Seal did not make.
func Describe(sealed []byte) (Info, error) {
	b, err := parseSealed(sealed)
	if err != nil {
		return Info{}, err
	}
	return Info{PCRs: b.pcrs, Parent: "owner hierarchy, ECC P-256 SRK template"}, nil
}

// unavailableOnError marks transport failures (a socket that refuses, a
// device that errs) as ErrUnavailable; TPM response codes pass through
// the command layer, not here.
type unavailableOnError struct{ transport.TPMCloser }

func (u unavailableOnError) Send(cmd []byte) ([]byte, error) {
	rsp, err := u.TPMCloser.Send(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return rsp, nil
}
