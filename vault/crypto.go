package vault

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// HKDF-SHA256 info labels of format v1. Every subkey has its own label, so
// no key is ever used for two purposes; the HKDF salt is always the vault
// id, so no subkey is shared between vaults.
const (
	labelHeaderMAC   = "sessionvault v1 header mac"
	labelSlotCheck   = "sessionvault v1 slot check" // + slot id
	labelSlotWrap    = "sessionvault v1 slot wrap"  // + slot id
	labelSessionSeal = "sessionvault v1 session seal"
)

// subkey derives a subkey of n bytes from secret with HKDF-SHA256. The
// caller wipes it.
func subkey(secret []byte, vaultID *[idSize]byte, label string, suffix []byte, n int) []byte {
	info := label + string(suffix)
	k, err := hkdf.Key(sha256.New, secret, vaultID[:], info, n)
	if err != nil {
		// Only possible for n > 255*32 bytes: a programmer error.
		panic("vault: hkdf: " + err.Error())
	}
	return k
}

// newAEAD returns XChaCha20-Poly1305 under a subkey of secret, and wipes
// the subkey (the AEAD keeps its own copy; see wipeAEAD).
func newAEAD(secret []byte, vaultID *[idSize]byte, label string, suffix []byte) cipher.AEAD {
	k := subkey(secret, vaultID, label, suffix, keySize)
	defer secmem.Wipe(k)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		panic("vault: " + err.Error()) // the key size is a constant
	}
	return aead
}

// slotCheck is the value a slot stores to tell a wrong key from a damaged
// slot: HKDF(KEK, "slot check" || slot id), 16 bytes.
func slotCheck(kek []byte, vaultID *[idSize]byte, id SlotID) [checkSize]byte {
	var c [checkSize]byte
	k := subkey(kek, vaultID, labelSlotCheck, id[:], checkSize)
	copy(c[:], k)
	secmem.Wipe(k)
	return c
}

// slotAAD is what a slot's wrapping authenticates: the header prefix up to
// the end of the generation list, then the slot's fields before its nonce.
func slotAAD(h *header, s *slot) []byte {
	b := make([]byte, 0, h.genPrefixLen()+s.fixedLen())
	b = append(b, headerMagic...)
	b = binary.BigEndian.AppendUint16(b, slotAADVersion)
	b = append(b, h.id[:]...)
	b = append(b, byte(len(h.gens)))
	for _, g := range h.gens {
		b = binary.BigEndian.AppendUint32(b, g)
	}
	return s.appendFixed(b)
}

// wrapSlot fills s.check, s.nonce and s.wrapped: keys (one per generation
// of h, in order) sealed under kek. s.kind, s.id and, for passphrase
// slots, s.params and s.salt must be set.
func wrapSlot(h *header, s *slot, kek []byte, keys [][]byte) {
	var nonce [nonceSize]byte
	rand.Read(nonce[:])
	wrapSlotNonce(h, s, kek, keys, nonce)
}

// wrapSlotNonce is wrapSlot with a given nonce, for known-answer tests.
func wrapSlotNonce(h *header, s *slot, kek []byte, keys [][]byte, nonce [nonceSize]byte) {
	if len(keys) != len(h.gens) {
		panic("vault: wrapSlot: one key per generation")
	}
	s.check = slotCheck(kek, &h.id, s.id)
	s.nonce = nonce
	plain := secmem.New(len(keys) * keySize)
	defer plain.Destroy()
	for i, k := range keys {
		copy(plain.Bytes()[i*keySize:], k)
	}
	aead := newAEAD(kek, &h.id, labelSlotWrap, s.id[:])
	defer wipeAEAD(aead)
	s.wrapped = aead.Seal(make([]byte, 0, len(plain.Bytes())+tagSize), s.nonce[:], plain.Bytes(), slotAAD(h, s))
}

// unwrapSlot opens s with kek. It returns ErrWrongKey if kek does not fit
// the slot (the check value differs) and ErrCorrupt if it fits but the
// wrapped keys do not open. On success it returns one locked buffer per
// generation of h, which the caller destroys.
func unwrapSlot(h *header, s *slot, kek []byte) ([]*secmem.Buffer, error) {
	want := slotCheck(kek, &h.id, s.id)
	if subtle.ConstantTimeCompare(want[:], s.check[:]) != 1 {
		return nil, &SlotError{Slot: s.id, Kind: s.kind, Reason: "the key does not fit this slot", Err: ErrWrongKey}
	}
	aead := newAEAD(kek, &h.id, labelSlotWrap, s.id[:])
	defer wipeAEAD(aead)
	plain := secmem.New(len(h.gens) * keySize)
	defer plain.Destroy()
	// Open into the locked buffer: cap suffices, so nothing else holds
	// the plaintext keys.
	if _, err := aead.Open(plain.Bytes()[:0], s.nonce[:], s.wrapped, slotAAD(h, s)); err != nil {
		return nil, &SlotError{Slot: s.id, Kind: s.kind, Reason: "the key fits but the wrapped keys fail authentication: the header is damaged or was tampered with", Err: ErrCorrupt}
	}
	keys := make([]*secmem.Buffer, len(h.gens))
	for i := range keys {
		keys[i] = secmem.New(keySize)
		copy(keys[i].Bytes(), plain.Bytes()[i*keySize:])
	}
	return keys, nil
}

// headerMAC computes the MAC of a header body under the current
// generation's data key.
func headerMAC(body []byte, vaultID *[idSize]byte, currentKey []byte) [macSize]byte {
	k := subkey(currentKey, vaultID, labelHeaderMAC, nil, keySize)
	defer secmem.Wipe(k)
	m := hmac.New(sha256.New, k)
	m.Write(body)
	var out [macSize]byte
	m.Sum(out[:0])
	return out
}

// sign sets h.mac from the current generation's data key.
func (h *header) sign(currentKey []byte) {
	h.mac = headerMAC(h.appendBody(nil), &h.id, currentKey)
}

// verifyMAC checks h.mac against the current generation's data key.
func (h *header) verifyMAC(currentKey []byte) bool {
	want := headerMAC(h.appendBody(nil), &h.id, currentKey)
	return hmac.Equal(want[:], h.mac[:])
}

// sessionAAD is what a sealed session authenticates besides its
// ciphertext: the envelope header (magic, version, generation, in
// version 2 the rollback counter, nonce), the
// vault id, and the session name with its length. It is built in buf
// (which must have room for it, maxAADSize) so sealing allocates nothing
// beyond its output.
func sessionAAD(buf []byte, envHdr []byte, vaultID *[idSize]byte, name string) []byte {
	b := append(buf[:0], envHdr...)
	b = append(b, vaultID[:]...)
	b = append(b, byte(len(name)))
	return append(b, name...)
}

// maxAADSize is the largest session AAD.
const maxAADSize = envelopeV2HeaderSize + idSize + 1 + 255

// aadPool holds AAD buffers: a buffer on the stack would escape to the
// heap through the cipher.AEAD interface call, one allocation per seal.
var aadPool = sync.Pool{New: func() any { return new([maxAADSize]byte) }}

// sealEnvelope seals plaintext for name under generation gen and its
// AEAD with rollback counter counter, appending the blob to dst: as an
// envelope of version 2, or of version 3 (in chunks) when the plaintext
// is above chunkedThreshold.
func sealEnvelope(dst []byte, aead cipher.AEAD, vaultID *[idSize]byte, gen uint32, counter uint64, name string, plaintext []byte) []byte {
	ver := uint16(envelopeVersion)
	if len(plaintext) > chunkedThreshold {
		ver = chunkVersion
	}
	return sealEnvelopeNonce(dst, aead, vaultID, ver, gen, counter, name, plaintext, nil)
}

// sealEnvelopeNonce is sealEnvelope for envelope version ver (1 has no
// counter; 3 is chunked, and its nonce is the 16-byte prefix) with a
// given nonce (nil: a random one), for known-answer tests.
func sealEnvelopeNonce(dst []byte, aead cipher.AEAD, vaultID *[idSize]byte, ver uint16, gen uint32, counter uint64, name string, plaintext, nonce []byte) []byte {
	if ver == chunkVersion {
		return sealChunked(dst, aead, vaultID, gen, counter, name, plaintext, nonce)
	}
	hl := envelopeHeaderLen(ver)
	if hl == 0 {
		panic("vault: sealEnvelope: unknown envelope version")
	}
	start := len(dst)
	dst = append(dst, envelopeMagic...)
	dst = binary.BigEndian.AppendUint16(dst, ver)
	dst = binary.BigEndian.AppendUint32(dst, gen)
	if ver >= 2 {
		dst = binary.BigEndian.AppendUint64(dst, counter)
	}
	dst = append(dst, make([]byte, nonceSize)...)
	hdr := dst[start : start+hl]
	if nonce == nil {
		rand.Read(hdr[hl-nonceSize:])
	} else {
		copy(hdr[hl-nonceSize:], nonce)
	}
	aadBuf := aadPool.Get().(*[maxAADSize]byte)
	defer aadPool.Put(aadBuf)
	aad := sessionAAD(aadBuf[:], hdr, vaultID, name)
	return aead.Seal(dst, hdr[hl-nonceSize:], plaintext, aad)
}

// openEnvelope opens a parsed envelope in place: the plaintext overwrites
// the ciphertext in the blob. On failure the blob's ciphertext is zeroed
// and no plaintext is returned.
func openEnvelope(aead cipher.AEAD, vaultID *[idSize]byte, name string, env envelope) ([]byte, error) {
	if env.version == chunkVersion {
		return openChunked(aead, vaultID, name, env)
	}
	aadBuf := aadPool.Get().(*[maxAADSize]byte)
	defer aadPool.Put(aadBuf)
	aad := sessionAAD(aadBuf[:], env.hdr, vaultID, name)
	plain, err := aead.Open(env.ciphertext[:0], env.nonce, env.ciphertext, aad)
	if err != nil {
		return nil, &FormatError{Structure: "session", Name: name, Field: "tag", Reason: "authentication failed: damaged, tampered with, or sealed for another name or vault", Err: ErrCorrupt}
	}
	return plain[:len(plain):len(plain)], nil
}
