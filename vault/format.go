package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/sessionvault/sessionvault/kdf"
)

// Format constants (docs/FORMAT.md). A header is version 1 unless it
// holds a TPM slot, which needs version 2 (headerVersion).
const (
	formatVersion = 1
	// headerVersionTPM is the header version that adds TPMSlot.
	headerVersionTPM = 2
	// headerVersionService is the header version that adds keychain
	// slots that record their key store's service name (wire kind
	// kindKeychainService).
	headerVersionService = 3
	// kindKeychainService is the stored kind byte of a keychain slot
	// that records a service name (header version 3). It is not a
	// SlotKind of its own: such a slot is a KeychainSlot whose
	// SlotInfo.Service is set.
	kindKeychainService = 4

	headerMagic   = "SVLT-HDR"
	envelopeMagic = "SVLT-SES"
)

// SlotKind is the kind of a key slot.
type SlotKind uint8

// Slot kinds of format v1. The values are stored in the header.
const (
	// PassphraseSlot: the key-encryption key is derived from a
	// passphrase with argon2id; the parameters and salt are in the slot.
	PassphraseSlot SlotKind = 1
	// KeychainSlot: the key-encryption key is 32 random bytes kept in a
	// backends.KeyStore under the account "<vault id>/<slot id>".
	KeychainSlot SlotKind = 2
	// TPMSlot (header version 2): the key-encryption key is 32 random
	// bytes sealed to a TPM2 (or another device) by a KEKSealer; the
	// slot holds the sealed bytes, which only that device can unseal.
	TPMSlot SlotKind = 3
)

// String returns "passphrase", "keychain" or "tpm".
func (k SlotKind) String() string {
	switch k {
	case PassphraseSlot:
		return "passphrase"
	case KeychainSlot:
		return "keychain"
	case TPMSlot:
		return "tpm"
	}
	return "slot-kind-" + strconv.Itoa(int(k))
}

// SlotID identifies a key slot within its vault.
type SlotID [16]byte

// String returns the id in lowercase hex.
func (id SlotID) String() string { return hex.EncodeToString(id[:]) }

// ParseSlotID parses the hex form returned by SlotID.String.
func ParseSlotID(s string) (SlotID, error) {
	var id SlotID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != idSize {
		return id, fmt.Errorf("vault: slot id %q: want %d hex digits", s, 2*idSize)
	}
	copy(id[:], b)
	return id, nil
}

// header is a parsed v1 header. It holds no secrets: data keys appear
// only wrapped inside the slots.
type header struct {
	id    [idSize]byte
	gens  []uint32 // strictly increasing; the last is the current one
	slots []slot
	mac   [macSize]byte
}

// slot is one key slot of a header.
type slot struct {
	kind    SlotKind
	id      SlotID
	params  kdf.Params     // PassphraseSlot only
	salt    [saltSize]byte // PassphraseSlot only
	sealed  []byte         // TPMSlot only: the KEK as the KEKSealer sealed it
	service string         // KeychainSlot only: the key store's service name, "" when not recorded
	check   [checkSize]byte
	nonce   [nonceSize]byte
	wrapped []byte // len(gens)*keySize + tagSize
}

// current returns the newest generation number.
func (h *header) current() uint32 { return h.gens[len(h.gens)-1] }

// slotByID returns the slot with id, or nil.
func (h *header) slotByID(id SlotID) *slot {
	for i := range h.slots {
		if h.slots[i].id == id {
			return &h.slots[i]
		}
	}
	return nil
}

// countKind returns the number of slots of kind k.
func (h *header) countKind(k SlotKind) int {
	n := 0
	for i := range h.slots {
		if h.slots[i].kind == k {
			n++
		}
	}
	return n
}

// clone returns a deep copy of h.
func (h *header) clone() *header {
	c := &header{id: h.id, mac: h.mac}
	c.gens = append([]uint32(nil), h.gens...)
	c.slots = make([]slot, len(h.slots))
	for i, s := range h.slots {
		s.wrapped = append([]byte(nil), s.wrapped...)
		s.sealed = append([]byte(nil), s.sealed...)
		c.slots[i] = s
	}
	return c
}

// genPrefixLen is the length of the header prefix that every slot's
// wrapping authenticates: magic, version, vault id, generation list.
func (h *header) genPrefixLen() int { return headerFixedSize + 1 + genSize*len(h.gens) }

// slotFixedLen is the length of a slot's fields before its nonce.
func (s *slot) fixedLen() int {
	n := 1 + idSize + checkSize
	if s.kind == PassphraseSlot {
		n += passphraseParamsSize
	}
	if s.kind == TPMSlot {
		n += 2 + len(s.sealed)
	}
	if s.kind == KeychainSlot && s.service != "" {
		n += 1 + len(s.service)
	}
	return n
}

// appendFixed appends a slot's fields before its nonce: kind, id,
// (params, salt; sealed key; service,) check.
func (s *slot) appendFixed(b []byte) []byte {
	b = append(b, s.wireKind())
	b = append(b, s.id[:]...)
	if s.kind == PassphraseSlot {
		b = binary.BigEndian.AppendUint32(b, s.params.Time)
		b = binary.BigEndian.AppendUint32(b, s.params.MemoryKiB)
		b = append(b, s.params.Threads)
		b = append(b, s.salt[:]...)
	}
	if s.kind == TPMSlot {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.sealed)))
		b = append(b, s.sealed...)
	}
	if s.kind == KeychainSlot && s.service != "" {
		b = append(b, byte(len(s.service)))
		b = append(b, s.service...)
	}
	return append(b, s.check[:]...)
}

// appendBody appends the header's bytes up to (not including) the MAC.
func (h *header) appendBody(b []byte) []byte {
	b = append(b, headerMagic...)
	b = binary.BigEndian.AppendUint16(b, h.version())
	b = append(b, h.id[:]...)
	b = append(b, byte(len(h.gens)))
	for _, g := range h.gens {
		b = binary.BigEndian.AppendUint32(b, g)
	}
	b = append(b, byte(len(h.slots)))
	for i := range h.slots {
		s := &h.slots[i]
		b = s.appendFixed(b)
		b = append(b, s.nonce[:]...)
		b = append(b, s.wrapped...)
	}
	return b
}

// encode returns the header's bytes: body, MAC (as stored in h.mac), and
// the SHA-256 checksum of both.
func (h *header) encode() []byte {
	b := h.appendBody(make([]byte, 0, h.size()))
	b = append(b, h.mac[:]...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// size is the length of the encoded header.
func (h *header) size() int {
	n := h.genPrefixLen() + 1
	for i := range h.slots {
		n += h.slots[i].fixedLen() + nonceSize + len(h.slots[i].wrapped)
	}
	return n + macSize + sumSize
}

// reader reads a header field by field. The first failure sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.err = corruptHeader(field, fmt.Sprintf("truncated at offset %d", r.off))
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8(field string) uint8 {
	if p := r.take(1, field); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u32(field string) uint32 {
	if p := r.take(4, field); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// parseHeader parses and checks a header's structure and checksum, and
// checks every passphrase slot's parameters against pol, without any key.
// It does not verify the MAC: that needs a data key (see unlockHeader).
//
// Errors are *FormatError (ErrCorrupt, ErrUnsupportedVersion, ErrTooLarge)
// or *PolicyError (ErrPolicy). The returned header shares no memory with
// b.
func parseHeader(b []byte, pol kdf.Policy) (*header, error) {
	h, err := parseHeaderStructure(b)
	if err != nil {
		return nil, err
	}
	// Parameters are checked only once the whole header is known to be
	// intact: a damaged header is reported as damaged, never as a policy
	// violation.
	for i := range h.slots {
		if s := &h.slots[i]; s.kind == PassphraseSlot {
			if err := pol.Check(s.params); err != nil {
				return nil, &PolicyError{Slot: s.id, Err: err}
			}
		}
	}
	return h, nil
}

// parseHeaderStructure is parseHeader without the KDF policy: it checks
// the size cap, checksum, version and structure, so its cost is bounded
// by maxHeaderSize whatever the bytes say. It derives no key. Only the
// purge uses its result unchecked, for the slot identities and
// generations of a previous header (retire.go): nothing is derived from
// the parameters it does not check.
func parseHeaderStructure(b []byte) (*header, error) {
	if len(b) > maxHeaderSize {
		return nil, &FormatError{Structure: "header", Field: "size", Reason: fmt.Sprintf("%d bytes, limit %d", len(b), maxHeaderSize), Err: ErrTooLarge}
	}
	if len(b) < magicSize || string(b[:magicSize]) != headerMagic {
		return nil, corruptHeader("magic", "not a sessionvault header")
	}
	if len(b) < minHeaderSize {
		return nil, corruptHeader("size", fmt.Sprintf("%d bytes, shorter than the smallest header (%d)", len(b), minHeaderSize))
	}
	// The checksum is the last 32 bytes in every version, so damage to
	// the version field is reported as damage, not as a new version.
	body, sum := b[:len(b)-sumSize], b[len(b)-sumSize:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return nil, corruptHeader("checksum", "SHA-256 mismatch: the header is damaged")
	}
	r := &reader{b: body}
	r.take(magicSize, "magic")
	version := binary.BigEndian.Uint16(r.take(versionSize, "version"))
	if version < formatVersion || version > headerVersionService {
		return nil, &FormatError{Structure: "header", Field: "version", Reason: fmt.Sprintf("version %d, this package reads versions %d to %d", version, formatVersion, headerVersionService), Err: ErrUnsupportedVersion}
	}
	h := &header{}
	copy(h.id[:], r.take(idSize, "vault id"))

	ng := int(r.u8("generation count"))
	if r.err == nil && (ng < 1 || ng > maxGenerations) {
		return nil, corruptHeader("generation count", fmt.Sprintf("%d, want 1 to %d", ng, maxGenerations))
	}
	h.gens = make([]uint32, 0, ng)
	for i := range ng {
		g := r.u32("generation")
		if r.err != nil {
			break
		}
		if g == 0 || (i > 0 && g <= h.gens[i-1]) {
			return nil, corruptHeader("generation", fmt.Sprintf("generation %d at index %d: want nonzero and strictly increasing", g, i))
		}
		h.gens = append(h.gens, g)
	}

	ns := int(r.u8("slot count"))
	if r.err == nil && (ns < 1 || ns > maxSlots) {
		return nil, corruptHeader("slot count", fmt.Sprintf("%d, want 1 to %d", ns, maxSlots))
	}
	wrappedLen := ng*keySize + tagSize
	for i := 0; i < ns && r.err == nil; i++ {
		var s slot
		field := func(f string) string { return fmt.Sprintf("slot %d %s", i, f) }
		wire := r.u8(field("kind"))
		s.kind = SlotKind(wire)
		named := wire == kindKeychainService && version >= headerVersionService
		if named {
			s.kind = KeychainSlot
		}
		if r.err == nil && s.kind != PassphraseSlot && s.kind != KeychainSlot && (s.kind != TPMSlot || version < headerVersionTPM) {
			return nil, corruptHeader(field("kind"), fmt.Sprintf("unknown kind %d in a version %d header", wire, version))
		}
		copy(s.id[:], r.take(idSize, field("id")))
		if s.kind == PassphraseSlot {
			s.params.Time = r.u32(field("argon2id time"))
			s.params.MemoryKiB = r.u32(field("argon2id memory"))
			s.params.Threads = r.u8(field("argon2id threads"))
			copy(s.salt[:], r.take(saltSize, field("salt")))
		}
		if s.kind == TPMSlot {
			if s.sealed, r.err = readSealed(r, field("sealed key")); r.err != nil {
				return nil, r.err
			}
		}
		if named {
			if s.service, r.err = readService(r, field("service")); r.err != nil {
				return nil, r.err
			}
		}
		copy(s.check[:], r.take(checkSize, field("check")))
		copy(s.nonce[:], r.take(nonceSize, field("nonce")))
		s.wrapped = append([]byte(nil), r.take(wrappedLen, field("wrapped keys"))...)
		if r.err != nil {
			break
		}
		if h.slotByID(s.id) != nil {
			return nil, corruptHeader(field("id"), "duplicate slot id")
		}
		if s.kind == PassphraseSlot && h.countKind(PassphraseSlot) == maxPassphraseSlots {
			return nil, corruptHeader(field("kind"), fmt.Sprintf("more than %d passphrase slots", maxPassphraseSlots))
		}
		if s.kind == TPMSlot && h.countKind(TPMSlot) == maxTPMSlots {
			return nil, corruptHeader(field("kind"), fmt.Sprintf("more than %d TPM slots", maxTPMSlots))
		}
		h.slots = append(h.slots, s)
	}
	copy(h.mac[:], r.take(macSize, "mac"))
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		return nil, corruptHeader("size", fmt.Sprintf("%d unexpected bytes after the MAC", len(body)-r.off))
	}
	if version != h.version() {
		// One encoding per header: the version follows from the slots.
		return nil, corruptHeader("version", fmt.Sprintf("version %d header whose slots make it version %d", version, h.version()))
	}
	return h, nil
}

// envelope is a parsed sealed session. Its slices alias the blob.
type envelope struct {
	version    uint16 // 1, 2 (rollback.go) or 3 (chunked.go)
	gen        uint32
	counter    uint64 // versions 2 and 3: the rollback counter; version 1: 0
	hdr        []byte // magic, version, generation, (counter,) nonce or nonce prefix: authenticated
	nonce      []byte // version 3: the 16-byte nonce prefix
	ciphertext []byte // with tag; version 3: the chunks
}

// parseEnvelope checks a sealed session's structure and sizes.
func parseEnvelope(name string, blob []byte) (envelope, error) {
	bad := func(field, reason string, err error) (envelope, error) {
		return envelope{}, &FormatError{Structure: "session", Name: name, Field: field, Reason: reason, Err: err}
	}
	if len(blob) > MaxSealedSize {
		return bad("size", fmt.Sprintf("%d bytes, limit %d", len(blob), MaxSealedSize), ErrTooLarge)
	}
	if len(blob) < magicSize || string(blob[:magicSize]) != envelopeMagic {
		return bad("magic", "not a sealed session", ErrCorrupt)
	}
	if len(blob) < envelopeHeaderSize+tagSize {
		return bad("size", fmt.Sprintf("%d bytes, shorter than the smallest sealed session (%d)", len(blob), envelopeHeaderSize+tagSize), ErrCorrupt)
	}
	v := binary.BigEndian.Uint16(blob[magicSize:])
	hl := envelopeHeaderLen(v)
	if hl == 0 {
		return bad("version", fmt.Sprintf("version %d, this package reads versions 1 to %d", v, chunkVersion), ErrUnsupportedVersion)
	}
	if v < chunkVersion && len(blob) > maxSealedV2Size {
		return bad("size", fmt.Sprintf("%d bytes, limit %d for a version %d sealed session", len(blob), maxSealedV2Size, v), ErrTooLarge)
	}
	if len(blob) < hl+tagSize {
		return bad("size", fmt.Sprintf("%d bytes, shorter than the smallest version %d sealed session (%d)", len(blob), v, hl+tagSize), ErrCorrupt)
	}
	if v == chunkVersion {
		if n, _, ok := chunkLayout(len(blob) - hl); !ok || n > maxChunks {
			return bad("size", fmt.Sprintf("%d bytes of chunks: the last chunk is cut short", len(blob)-hl), ErrCorrupt)
		}
	}
	np := nonceSize
	if v == chunkVersion {
		np = noncePrefixSize
	}
	return envelope{
		version:    v,
		gen:        binary.BigEndian.Uint32(blob[magicSize+versionSize:]),
		counter:    envelopeCounter(v, blob),
		hdr:        blob[:hl:hl],
		nonce:      blob[hl-np : hl : hl],
		ciphertext: blob[hl:],
	}, nil
}
