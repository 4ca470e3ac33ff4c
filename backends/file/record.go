package file

import (
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"strconv"

	"github.com/sessionvault/sessionvault/backends"
)

// Layout 2 record files (docs/FORMAT.md, section 15).
//
// A stored file of layout 2 (a "record") holds two slots of slotSize
// bytes each, slot 0 at offset 0 and slot 1 at offset slotSize, as LMDB
// keeps two meta pages. A slot is a 64-byte header followed by the blob
// and zero padding:
//
//	0   8  magic "SVLT-REC"
//	8   2  layout version, 2
//	10  1  slot index, 0 or 1 (its position in the file)
//	11  1  zero
//	12  4  slot size (the file's size / 2)
//	16 16  record id: random, drawn when the record file is created
//	32  8  sequence number, >= 1: the slot with the highest valid one is current
//	40  4  blob length n, <= slot size - 64
//	44  8  blob checksum: sum64 of the blob
//	52  4  zero
//	56  8  header checksum: sum64 of bytes 0 to 56
//
// Integers are big-endian. A slot is valid when every field checks out and
// both checksums match; an update writes the slot that is not current
// (header, blob and the zeros that cover the rest of the slot's old blob)
// in one write, then fdatasyncs. A write that tears leaves that slot
// invalid, so the other slot (the blob before the update) stays current.
const (
	recMagic       = "SVLT-REC"
	recVersion     = 2
	slotHeaderSize = 64

	// blockSize is the unit of a slot: slots never share a file system
	// block (4 KiB on every file system we support), so writing one slot
	// never rewrites a block of the other; a torn write of one slot can
	// only damage that slot.
	blockSize = 4096

	// maxSlotSize holds the largest blob a Backend must store.
	maxSlotSize = (slotHeaderSize + backends.MaxBlobSize + blockSize - 1) / blockSize * blockSize
	// maxRecordSize bounds what a reader accepts as a record before it
	// allocates anything.
	maxRecordSize = 2 * maxSlotSize

	// smallRecord: records up to this size are read whole with one
	// pread(2) (a 2 KiB session's record is 8 KiB); larger ones header
	// by header, then the one blob needed.
	smallRecord = 64 << 10

	// readAttempts bounds how often a reader that raced with writers
	// (a slot's header changed while it read) starts again. Each retry
	// needs a whole write to complete meanwhile, so even a busy writer
	// rarely causes more than one.
	readAttempts = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sum64 is the checksum of slots: CRC-32C (Castagnoli) of p in the high 32
// bits, CRC-32 (IEEE) in the low 32. Both run at memory speed (SSE4.2 /
// PCLMULQDQ on amd64, CRC instructions on arm64: about 60 µs per MiB here,
// a twentieth of SHA-256 without SHA extensions). Together they act as a
// 64-bit cyclic code whose generator is the product of the two
// polynomials: damage that is not a multiple of both (a torn write, which
// replaces part of a blob with other ciphertext, is random-like) escapes
// with probability about 2^-64. It detects accidents, not edits: anyone
// who can write the file can recompute it, and the sealed envelope's tag
// is what detects a deliberate change.
func sum64(p []byte) uint64 {
	return uint64(crc32.Checksum(p, castagnoli))<<32 | uint64(crc32.ChecksumIEEE(p))
}

// slotHeader is a slot's header, parsed.
type slotHeader struct {
	index    int
	slotSize int
	id       [16]byte
	seq      uint64
	n        int
	sum      uint64
}

// marshal writes h into p[:slotHeaderSize].
func (h *slotHeader) marshal(p []byte) {
	p = p[:slotHeaderSize]
	clear(p)
	copy(p, recMagic)
	binary.BigEndian.PutUint16(p[8:], recVersion)
	p[10] = byte(h.index)
	binary.BigEndian.PutUint32(p[12:], uint32(h.slotSize))
	copy(p[16:32], h.id[:])
	binary.BigEndian.PutUint64(p[32:], h.seq)
	binary.BigEndian.PutUint32(p[40:], uint32(h.n))
	binary.BigEndian.PutUint64(p[44:], h.sum)
	binary.BigEndian.PutUint64(p[56:], sum64(p[:56]))
}

// hasMagic reports whether p starts like a slot header.
func hasMagic(p []byte) bool { return len(p) >= len(recMagic) && string(p[:len(recMagic)]) == recMagic }

// parseSlotHeader parses the header of slot index in a record of slots of
// slotSize bytes; ok is false unless every field is valid.
func parseSlotHeader(p []byte, index, slotSize int) (h slotHeader, ok bool) {
	if len(p) < slotHeaderSize || !hasMagic(p) {
		return h, false
	}
	p = p[:slotHeaderSize]
	if binary.BigEndian.Uint64(p[56:]) != sum64(p[:56]) {
		return h, false
	}
	h = slotHeader{
		index:    int(p[10]),
		slotSize: int(binary.BigEndian.Uint32(p[12:])),
		seq:      binary.BigEndian.Uint64(p[32:]),
		n:        int(binary.BigEndian.Uint32(p[40:])),
		sum:      binary.BigEndian.Uint64(p[44:]),
	}
	copy(h.id[:], p[16:32])
	ok = binary.BigEndian.Uint16(p[8:]) == recVersion &&
		h.index == index && p[11] == 0 && binary.BigEndian.Uint32(p[52:]) == 0 &&
		h.slotSize == slotSize && h.seq >= 1 && h.n >= 0 && h.n <= slotSize-slotHeaderSize // n >= 0: int is 32 bits on some targets
	return h, ok
}

// validRecordSize reports whether a file of size bytes can be a record.
func validRecordSize(size int64) bool {
	return size >= 2*blockSize && size <= maxRecordSize && size%(2*blockSize) == 0
}

// slotSizeFor is the slot size of a new record whose largest blob so far
// is n bytes: a quarter more, so that a session that grows by a cookie or
// two is still updated in place, in whole blocks.
func slotSizeFor(n int) int {
	s := slotHeaderSize + n + n/4
	s = (s + blockSize - 1) / blockSize * blockSize
	return min(max(s, blockSize), maxSlotSize)
}

// recVersionOf is the backends.Version of the blob in a slot of record id
// with sequence number seq: "SEQ@ID", the sequence number in decimal and
// the id in hex. The id changes when a record is created anew (after a
// Delete), so a version never repeats for a name, and no stored byte but
// the header is read to compare versions.
func recVersionOf(id *[16]byte, seq uint64) backends.Version {
	var b [20 + 1 + 32]byte // the longest uint64, '@', the id in hex
	p := strconv.AppendUint(b[:0], seq, 10)
	p = append(p, '@')
	p = p[:len(p)+hex.EncodedLen(len(id))]
	hex.Encode(p[len(p)-hex.EncodedLen(len(id)):], id[:])
	return backends.Version(p)
}
