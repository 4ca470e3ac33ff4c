package file

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"

	"github.com/sessionvault/sessionvault/backends"
)

// What a stored file holds, as load found it.
type storedKind int

const (
	storedNone storedKind = iota // no file
	storedV1                     // layout 1: the file is the blob (or a damaged record)
	storedV2                     // layout 2: a record with at least one valid slot
)

// which says which blobs load must return.
type which int

const (
	wantCur  which = 1 << iota // the current blob
	wantPrev                   // the previous generation (layout 2 only)
)

// preader reads a stored file at an offset.
type preader interface {
	pread(p []byte, off int64) error
}

// stored is the state of one name's file.
type stored struct {
	kind storedKind
	blob []byte // the current blob: layout 1, the whole file; layout 2, the current slot's blob
	ver  backends.Version

	// Layout 2 only.
	slotSize int
	raw      [2][slotHeaderSize]byte // both slot headers as read
	hdr      [2]slotHeader
	hok      [2]bool // the slot's header is valid
	cur      int     // the current slot
	prevSlot int     // the slot of the previous generation, or -1
	prev     []byte  // its blob, with wantPrev
}

// maxSeq is the highest sequence number in a valid slot header.
func (s *stored) maxSeq() uint64 {
	var m uint64
	for i := range 2 {
		if s.hok[i] {
			m = max(m, s.hdr[i].seq)
		}
	}
	return m
}

// errBusy is returned by a reader that saw the record change under it
// readAttempts times in a row.
var errBusy = errors.New("the record kept changing while it was read")

// v1Version is the Version of a layout-1 file: the hex SHA-256 of its
// bytes (see the package documentation).
func v1Version(blob []byte) backends.Version {
	sum := sha256.Sum256(blob)
	return backends.Version(hex.EncodeToString(sum[:]))
}

// load reads the stored file of size bytes open as f. It takes no lock: a
// record being updated by another writer at the same time reads as the
// state before that write or the state after it, never a mix (see
// readRecord). alloc returns a buffer of n bytes for blobs the caller
// does not keep (the record of a small file, a blob read only to check
// it); returned blobs (wantCur, wantPrev) are always fresh slices the
// caller owns.
func load(f preader, size int64, want which, alloc func(int) []byte) (*stored, error) {
	if size > maxRecordSize {
		return nil, &tooLargeError{path: pathOf(f), size: size, limit: maxRecordSize}
	}
	if validRecordSize(size) {
		st, err := readRecord(f, size, want, alloc)
		if err != nil || st != nil {
			return st, err
		}
	}
	// Not a record (or one with no valid slot left): the file is the
	// blob, as in layout 1.
	if size > backends.MaxBlobSize {
		return nil, &tooLargeError{path: pathOf(f), size: size, limit: backends.MaxBlobSize}
	}
	buf := make([]byte, size)
	if err := f.pread(buf, 0); err != nil {
		return nil, err
	}
	return &stored{kind: storedV1, blob: buf, ver: v1Version(buf), cur: -1, prevSlot: -1}, nil
}

func pathOf(f preader) string {
	if sf, ok := f.(*sysFile); ok {
		return sf.path
	}
	return "record"
}

// snapshot is one read of a record's two slot headers (and, for a small
// record, of the whole file).
type snapshot struct {
	raw   [2][slotHeaderSize]byte
	whole []byte
}

// readRecord reads a record of size bytes. It returns nil, nil when the
// file is not a record with a valid slot.
//
// Without a lock a reader can meet a writer, which writes only the slot
// that is not current, in one write. The reader takes a snapshot of both
// headers, then checks the blob of the slot with the highest sequence
// number: if its checksums hold, that blob is a whole generation and the
// newest one committed when the headers were read. If they fail, the slot
// is being written right now or was torn by a crash (or damaged): only if
// a second snapshot shows the very same headers is the other slot taken,
// since then no write completed in between. A changed header means a
// write completed: start again.
func readRecord(f preader, size int64, want which, alloc func(int) []byte) (*stored, error) {
	c := int(size / 2)
	small := size <= smallRecord
	var last *snapshot
	for range readAttempts {
		sn := &snapshot{}
		if small {
			sn.whole = alloc(int(size))
			if err := f.pread(sn.whole, 0); err != nil {
				return nil, err
			}
			copy(sn.raw[0][:], sn.whole)
			copy(sn.raw[1][:], sn.whole[c:])
		} else {
			for i := range 2 {
				if err := f.pread(sn.raw[i][:], int64(i*c)); err != nil {
					return nil, err
				}
			}
		}
		if !hasMagic(sn.raw[0][:]) && !hasMagic(sn.raw[1][:]) {
			return nil, nil
		}
		st, topValid, err := evaluate(f, sn, c, want, alloc)
		if err != nil {
			return nil, err
		}
		if topValid || (last != nil && last.raw == sn.raw) {
			if st.cur < 0 {
				return nil, nil
			}
			return st, nil
		}
		last = sn
	}
	return nil, &fs.PathError{Op: "read", Path: pathOf(f), Err: errBusy}
}

// evaluate finds the current slot (and with wantPrev the previous one) of
// the record in sn. topValid reports whether the slot with the highest
// valid header was valid as a whole.
func evaluate(f preader, sn *snapshot, c int, want which, alloc func(int) []byte) (st *stored, topValid bool, err error) {
	st = &stored{kind: storedV2, slotSize: c, raw: sn.raw, cur: -1, prevSlot: -1}
	for i := range 2 {
		st.hdr[i], st.hok[i] = parseSlotHeader(sn.raw[i][:], i, c)
	}
	order := make([]int, 0, 2)
	for i := range 2 {
		if st.hok[i] {
			order = append(order, i)
		}
	}
	if len(order) == 2 && st.hdr[1].seq > st.hdr[0].seq {
		order[0], order[1] = 1, 0
	}
	blobOf := func(i int, keep bool) ([]byte, error) {
		h := &st.hdr[i]
		var p []byte
		if sn.whole != nil {
			p = sn.whole[i*c+slotHeaderSize : i*c+slotHeaderSize+h.n]
			if keep {
				p = append(make([]byte, 0, len(p)), p...)
			}
		} else {
			if keep {
				p = make([]byte, h.n)
			} else {
				p = alloc(h.n)
			}
			if err := f.pread(p, int64(i*c+slotHeaderSize)); err != nil {
				return nil, err
			}
		}
		if sum64(p) != h.sum {
			return nil, nil
		}
		return p, nil
	}
	for k, i := range order {
		p, err := blobOf(i, want&wantCur != 0)
		if err != nil {
			return nil, false, err
		}
		if p != nil {
			st.cur, st.blob, topValid = i, p, k == 0
			break
		}
	}
	if st.cur < 0 {
		// No valid slot, or no valid header at all: a header may have
		// been read while it was being written (each header is read on
		// its own for a large record, so both can be, by two writes),
		// so only a second, identical snapshot makes this final.
		return st, false, nil
	}
	h := &st.hdr[st.cur]
	st.ver = recVersionOf(&h.id, h.seq)
	if j := 1 - st.cur; st.hok[j] && st.hdr[j].id == h.id && st.hdr[j].seq < h.seq {
		if want&wantPrev != 0 {
			p, err := blobOf(j, true)
			if err != nil {
				return nil, false, err
			}
			if p != nil {
				st.prevSlot, st.prev = j, p
			}
		}
	}
	return st, topValid, nil
}
