package file

import (
	"context"
	"errors"
	"io/fs"

	"github.com/sessionvault/sessionvault/backends"
)

// A writer keeps each name's record open between updates, in the name's
// write-lock entry (lockEntry.rec, used only by the holder of the write
// lock, closed with the entry: when it falls out of the maxIdleLocks most
// recently used idle ones, or by Close), together with what it knows of
// the record after its own last write. An update in place then costs,
// besides the write lock: one fstatat(2) (statx(2) on Linux, not asking
// for the timestamps: stat_linux.go), which checks that the path still
// leads to the descriptor's inode and passes the open's checks, one
// pread(2) of the two slot headers, the pwritev(2) and the fdatasync(2),
// instead of an openat, an fstat, a read of the whole record, the current
// blob's checksums and a close.
//
// The state is trusted only when both slot headers read back byte for
// byte as this Backend left them after its last successful write
// (docs/FORMAT.md, section 15.2). Why that is enough:
//
//   - Every writer of the record holds the name's write lock, so nothing
//     else writes the record while this writer holds it; between two of
//     its updates, others may have.
//   - Every write another writer can make to the record's bytes starts
//     with, or is, a change of a slot header: an update in place writes
//     the header first in the same pwritev (a new sequence number: never
//     the bytes that were there), then the blob; one that fails writes
//     the header again (zeros, or for a Restore the old header over the
//     very blob that slot already held, so the slot's bytes are what they
//     were); DropPrevious zeroes a whole slot, header included. A rewrite
//     or a Delete replaces or removes the file: the fstatat sees another
//     inode or none.
//   - A write torn by the death of its process (a signal in the middle of
//     pwritev) is torn in the page cache, which every process shares, and
//     the kernel copies a write's bytes in file order: the header, at the
//     start of the slot, changes first. A write torn by a power cut or a
//     crash of the machine takes this process down too, and with it this
//     state; the next process reads the record as a first writer does.
//
// So unchanged headers mean no writer touched either slot since this
// Backend's write: the current slot is the one it wrote (whose blob it
// wrote and checksummed itself), and the other is the one that was
// current before it (whose blob was checked then, and beyond which the
// slot holds zeros), so the update needs neither blob. Anything else
// (changed headers, another inode, a Restore, which needs the previous
// blob, a blob that no longer fits, an expected version other than the
// one this Backend wrote) reads the record whole, as a first update does.
// On Windows records are not kept (keepRecords). What this does not see is damage by something that is not
// a writer of the backend (the disk, another program writing the file):
// that the readers' checksums detect, as before.
type recCache struct {
	f    *sysFile
	size int64
	// known: st is the record's state right after this Backend's last
	// successful update in place of it (blobs not kept).
	known bool
	st    stored
}

// dropRecord closes the record kept for e, if any. The caller holds e's
// lock (e.sem) or is its cache's drop.
func (e *lockEntry) dropRecord() {
	if e.rec != nil {
		e.rec.f.close()
		e.rec = nil
	}
}

// openRecord is openStored for a writer holding name's write lock (e):
// it reuses the record kept open in e when its path still leads to it,
// and for a Put whose blob fits in the kept record's slots and whose
// ifVersion is the version this Backend last wrote (or backends.Any),
// when the slot headers are as this Backend left them, returns the known
// state without reading a blob (see recCache). Any other version is
// checked against the record as read whole, so a conflict is never
// reported from the kept state alone. The file returned belongs to e:
// the caller must not close it.
func (b *Backend) openRecord(ctx context.Context, op, name string, l location, e *lockEntry, want which, blobLen int, ifVersion backends.Version, sc *scratch) (*sysFile, *stored, error) {
	if err := b.step(ctx, op, name, StepRead, l.dir, l.file); err != nil {
		return nil, nil, err
	}
	if c := e.rec; c != nil {
		if size, ok := l.dir.sameFile(c.f, l.file); ok && size == c.size {
			if c.known && want == 0 && slotHeaderSize+blobLen <= c.st.slotSize && (ifVersion == backends.Any || ifVersion == c.st.ver) {
				st, ok, err := c.quick(sc)
				if err != nil {
					e.dropRecord()
					return nil, nil, err
				}
				if ok {
					return c.f, st, nil
				}
			}
			c.known = false
			st, err := load(c.f, c.size, want, sc.alloc)
			if err != nil {
				e.dropRecord()
				return nil, nil, err
			}
			return c.f, st, nil
		}
		e.dropRecord()
	}
	f, size, err := l.dir.openFile(l.file, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &stored{kind: storedNone, cur: -1, prevSlot: -1}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := load(f, size, want, sc.alloc)
	if err != nil {
		f.close()
		return nil, nil, err
	}
	e.rec = &recCache{f: f, size: size}
	return f, st, nil
}

// quick reads both slot headers and returns the known state if they are
// unchanged; ok is false otherwise.
func (c *recCache) quick(sc *scratch) (st *stored, ok bool, err error) {
	var raw [2][slotHeaderSize]byte
	s := c.st.slotSize
	if c.size <= smallRecord {
		// One read from the first header to the end of the second.
		p := sc.alloc(s + slotHeaderSize)
		if err := c.f.pread(p, 0); err != nil {
			return nil, false, err
		}
		copy(raw[0][:], p)
		copy(raw[1][:], p[s:])
	} else {
		for i := range 2 {
			if err := c.f.pread(raw[i][:], int64(i*s)); err != nil {
				return nil, false, err
			}
		}
	}
	if raw != c.st.raw {
		return nil, false, nil
	}
	cp := c.st
	return &cp, true, nil
}

// wrote records the state after a successful update in place that wrote
// header h (raw bytes hb) into slot h.index of the record st described.
// The other slot is st's current one, whose blob was checked (by load or,
// known, by this writer's own write): it is the previous generation now.
func (c *recCache) wrote(st *stored, h *slotHeader, hb *[slotHeaderSize]byte) {
	i := h.index
	n := stored{kind: storedV2, slotSize: st.slotSize, raw: st.raw, hdr: st.hdr, hok: st.hok, cur: i, prevSlot: 1 - i}
	n.raw[i] = *hb
	n.hdr[i], n.hok[i] = *h, true
	n.ver = recVersionOf(&h.id, h.seq)
	c.st, c.known = n, true
}
