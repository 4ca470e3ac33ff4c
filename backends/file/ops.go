package file

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// bufPool holds buffers for bytes a call reads and drops before it
// returns (a small record read whole, a blob read only to check it), so
// that a 1 MiB session does not cost 1 MiB of fresh, page-faulting memory
// per write.
var bufPool sync.Pool // of *[]byte

// scratch hands out pooled buffers for one call and returns them.
type scratch struct {
	first *[]byte   // the first buffer (most calls need one at most)
	more  []*[]byte // the others
}

func (s *scratch) alloc(n int) []byte {
	bp, _ := bufPool.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, n)
		bp = &b
	}
	if s.first == nil {
		s.first = bp
	} else {
		s.more = append(s.more, bp)
	}
	return (*bp)[:n]
}

func (s *scratch) release() {
	if s.first != nil {
		bufPool.Put(s.first)
		s.first = nil
	}
	for _, bp := range s.more {
		bufPool.Put(bp)
	}
	s.more = nil
}

// Get returns the blob stored under name and its version. It takes no
// lock. A file over the size limit is refused with backends.ErrTooLarge
// before anything is allocated for it.
func (b *Backend) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	const op = "get"
	if err := b.enter(ctx, op, name, true); err != nil {
		return nil, "", err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	var sc scratch
	defer sc.release()
	f, st, err := b.openStored(ctx, op, name, l, false, wantCur, &sc)
	if err == nil && st.kind == storedNone {
		err = &fs.PathError{Op: "open", Path: l.dir.join(l.file), Err: fs.ErrNotExist}
	}
	if f != nil {
		f.close()
	}
	if err != nil {
		return nil, "", opError(op, name, "", readKind(err), err)
	}
	return st.blob, st.ver, nil
}

// openStored opens name's file (for an update in place with write) and
// loads it. A missing file is a stored of kind storedNone and a nil file.
func (b *Backend) openStored(ctx context.Context, op, name string, l location, write bool, want which, sc *scratch) (*sysFile, *stored, error) {
	if err := b.step(ctx, op, name, StepRead, l.dir, l.file); err != nil {
		return nil, nil, err
	}
	// A file that reads as no record with a valid slot but has been
	// removed (or renamed over) meanwhile may be one its remover was
	// overwriting with zeros (scrub.go): the path is opened again. Each
	// retry needs another removal in between, so readAttempts bounds
	// them as it bounds readRecord's.
	for range readAttempts {
		f, size, err := l.dir.openFile(l.file, write)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &stored{kind: storedNone, cur: -1, prevSlot: -1}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		st, err := load(f, size, want, sc.alloc)
		if err == nil && st.kind == storedV1 && f.unlinked() {
			f.close()
			continue
		}
		if err != nil {
			f.close()
			return nil, nil, err
		}
		return f, st, nil
	}
	return nil, nil, &fs.PathError{Op: "read", Path: l.dir.join(l.file), Err: errBusy}
}

// Put stores blob under name if the stored version is ifVersion, as
// described in the package documentation, and returns the new version.
//
// A failed Put leaves the old blob current. An update in place that fails
// at its write or its fdatasync zeroes the header of the slot it wrote
// (the previous generation that slot held is lost; which of the two
// blobs a crash right then would leave on disk is unknown, both whole). A
// rewrite that fails before its rename removes its temp file; after it,
// the new record's slot 0 is invalidated (or a record that did not exist
// is removed), which makes the replaced blob current again; when the
// replaced file held no readable blob (an oversized file replaced with
// backends.Any), there is none to go back to, and the new blob stays
// current (the error says so).
func (b *Backend) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	if err := b.enter(ctx, "put", name, true); err != nil {
		return "", err
	}
	defer b.closeMu.RUnlock()
	if len(blob) > backends.MaxBlobSize {
		return "", opError("put", name, "", backends.ErrTooLarge, fmt.Errorf("%d bytes, limit %d", len(blob), backends.MaxBlobSize))
	}
	return b.update(ctx, "put", name, blob, ifVersion, false)
}

// Restore makes the previous generation of name current again if the
// current version is ifVersion, writing it exactly as Put does (the
// replaced blob becomes the previous generation), under the name's write
// lock from the read of the previous generation to the write.
func (b *Backend) Restore(ctx context.Context, name string, ifVersion backends.Version) (backends.Version, error) {
	const op = "restore"
	if err := b.enter(ctx, op, name, true); err != nil {
		return "", err
	}
	defer b.closeMu.RUnlock()
	return b.update(ctx, op, name, nil, ifVersion, true)
}

// lockName takes name's write lock (locks/.NAME.wlock and the lock inside
// the process). Every write of name holds it, so a record is only ever
// written by one writer at a time, and a writer that replaces the file
// (create, grow, migrate, delete) excludes those that update it in place.
//
// The entry returned is the name's write-lock entry, which keeps the
// name's record open between writes (reccache.go): a writer that
// replaces or removes the file, or writes it other than by writeSlot,
// calls e.dropRecord (or leaves it unknown) before unlocking.
func (b *Backend) lockName(ctx context.Context, op, name string) (*lockEntry, error) {
	if err := b.step(ctx, op, name, StepLock, b.locks, "."+name+writeLockExt); err != nil {
		return nil, err
	}
	e, _, err := b.acquire(ctx, &b.writeLocks, name, true, writePollMin, writePollMax)
	return e, err
}

// unlockName releases the write lock lockName took. A failure to unlock
// is not the write's: closing the descriptor released the lock.
func (b *Backend) unlockName(e *lockEntry) { _ = b.writeLocks.release(e) }

// location returns where name's files are, computed once per write-lock
// entry. The caller holds e.
func (b *Backend) location(e *lockEntry) location {
	if e.loc == nil {
		l := b.locate(e.name)
		e.loc = &l
	}
	return *e.loc
}

// update is Put (restore false) and Restore (restore true, blob unused).
func (b *Backend) update(ctx context.Context, op, name string, blob []byte, ifVersion backends.Version, restore bool) (backends.Version, error) {
	e, err := b.lockName(ctx, op, name)
	if err != nil {
		return "", opError(op, name, StepLock, writeKind(err), err)
	}
	defer b.unlockName(e)
	l := b.location(e)
	if !keepRecords {
		defer e.dropRecord() // before unlock: deferred later, runs first
	}
	var sc scratch
	defer sc.release()
	want := which(0)
	if restore {
		want = wantPrev
	}
	f, st, err := b.openRecord(ctx, op, name, l, e, want, len(blob), ifVersion, &sc)
	var tl *tooLargeError
	if errors.As(err, &tl) && ifVersion == backends.Any {
		// An oversized file (nothing a writer of ours made) is
		// replaced unconditionally, as a layout-1 file whose content
		// is unknown, or restored from a layout-1 previous generation.
		f, st, err = nil, &stored{kind: storedV1, cur: -1, prevSlot: -1}, nil
	}
	if err != nil {
		return "", opError(op, name, StepRead, readKind(err), err)
	}
	// f (if not nil) is kept open in e for the next write; a rewrite
	// replaces the file and closes it.
	if err := checkVersion(st, ifVersion); err != nil {
		return "", opError(op, name, "", backends.ErrConflict, err)
	}
	if restore {
		switch st.kind {
		case storedV2:
			blob = st.prev
		case storedV1:
			// A layout-1 file's previous generation is its own file.
			if err := b.step(ctx, op, name, StepRead, l.dir, l.prev); err != nil {
				return "", opError(op, name, StepRead, readKind(err), err)
			}
			if blob, err = l.dir.readFile(l.prev, backends.MaxBlobSize); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", opError(op, name, StepRead, readKind(err), err)
			}
		}
		if blob == nil {
			return "", opError(op, name, "", backends.ErrNotFound, errNoPrevious)
		}
	}
	// A record another hard link also names is rewritten, not written
	// in place: the other name keeps its bytes (see otherLinks).
	if st.kind == storedV2 && slotHeaderSize+len(blob) <= st.slotSize && (f == nil || !f.otherLinks()) {
		return b.writeSlot(ctx, op, name, l, e, f, st, blob, restore && st.prevSlot == 1-st.cur)
	}
	e.dropRecord()
	return b.rewrite(ctx, op, name, l, st, blob)
}

// errNoPrevious is the cause of a Restore or Previous without a previous
// generation.
var errNoPrevious = errors.New("no previous generation")

// checkVersion compares the stored version with ifVersion; a mismatch is
// a *conflictError.
func checkVersion(st *stored, ifVersion backends.Version) error {
	switch {
	case ifVersion == backends.Any:
	case ifVersion == backends.Absent:
		if st.kind != storedNone {
			return &conflictError{"a blob is stored (want none)"}
		}
	case st.kind == storedNone:
		return &conflictError{"no blob is stored (want version " + short(ifVersion) + ")"}
	case st.ver != ifVersion:
		return &conflictError{"stored version " + short(st.ver) + ", want " + short(ifVersion)}
	}
	return nil
}

// writeSlot is an update in place: blob goes into the slot that is not
// current, with the next sequence number, in one write (header, blob,
// and zeros over whatever of that slot's old blob lies beyond), then one
// fdatasync. A failure at either step invalidates the slot again, so that
// the old blob stays current; the previous generation that slot held is
// lost then, except in a Restore (restore set), which wrote that very
// blob and puts the slot's header back as it was.
//
// On success the record's new state is kept in e (see recCache); on
// failure it is unknown.
func (b *Backend) writeSlot(ctx context.Context, op, name string, l location, e *lockEntry, f *sysFile, st *stored, blob []byte, restore bool) (backends.Version, error) {
	if e.rec != nil {
		e.rec.known = false
	}
	i := 1 - st.cur
	h := slotHeader{index: i, slotSize: st.slotSize, id: st.hdr[st.cur].id, seq: st.maxSeq() + 1, n: len(blob), sum: sum64(blob)}
	var hb [slotHeaderSize]byte
	h.marshal(hb[:])
	// How far the slot's old content may reach: its blob's end only when
	// that blob checked out (the previous generation). A header whose
	// blob does not is a torn write, whose length says nothing about the
	// bytes of an older, longer blob still beyond it: zero the whole slot.
	end := st.slotSize
	if st.hok[i] && st.prevSlot == i {
		end = slotHeaderSize + st.hdr[i].n
	}
	parts := make([][]byte, 0, 3)
	parts = append(parts, hb[:], blob)
	parts = zeros(parts, end-slotHeaderSize-len(blob))
	off := int64(i) * int64(st.slotSize)
	// The undo: a Restore wrote the slot's own blob over itself, so its
	// old header brings back the state before the call exactly; after a
	// Put the slot holds (part of) the new blob, and a zeroed header
	// makes it empty.
	undo := zeroBlock[:slotHeaderSize]
	if restore {
		var old [slotHeaderSize]byte
		st.hdr[i].marshal(old[:])
		undo = old[:]
	}
	fail := func(s Step, err error) (backends.Version, error) {
		if uerr := f.pwritev([][]byte{undo}, off); uerr != nil {
			err = fmt.Errorf("%w (and invalidating the slot failed too, so the new blob may be current: %v)", err, uerr)
		}
		return "", opError(op, name, s, writeKind(err), err)
	}
	if err := b.step(ctx, op, name, StepWrite, l.dir, l.file); err != nil {
		f.pwritev([][]byte{hb[:], blob[:len(blob)/2]}, off) // a fault midway, as a full disk would do it
		return fail(StepWrite, err)
	}
	if err := f.pwritev(parts, off); err != nil {
		return fail(StepWrite, err)
	}
	if err := b.step(ctx, op, name, StepFsync, l.dir, l.file); err != nil {
		return fail(StepFsync, err)
	}
	if err := f.datasync(); err != nil {
		return fail(StepFsync, &fs.PathError{Op: "fdatasync", Path: f.path, Err: err})
	}
	if e.rec != nil && e.rec.f == f {
		e.rec.wrote(st, &h, &hb)
		return e.rec.st.ver, nil
	}
	return recVersionOf(&h.id, h.seq), nil
}

// rewrite writes name's record anew through a temp file and a rename: to
// create it, to move a layout-1 file to layout 2, or to give a blob that
// outgrew its slot bigger slots. The new blob goes into slot 0, the
// current one (if any) into slot 1 as the previous generation, with the
// sequence number and record id it had (so its version stays the same),
// and the rest of the file is written zeros, so that later updates in
// place find every block allocated and written.
func (b *Backend) rewrite(ctx context.Context, op, name string, l location, st *stored, blob []byte) (backends.Version, error) {
	var (
		id            [16]byte
		seq, prevSeq  uint64
		prev          []byte
		removeV1Extra = st.kind == storedV1
	)
	switch st.kind {
	case storedNone:
		rand.Read(id[:])
		seq = 1
	case storedV1:
		rand.Read(id[:])
		prev, prevSeq, seq = st.blob, 1, 2 // st.blob is nil for an oversized file: no previous then
	case storedV2:
		id = st.hdr[st.cur].id
		prev, prevSeq, seq = st.blob, st.hdr[st.cur].seq, st.maxSeq()+1
	}
	var oldFirst int64
	if st.kind == storedV2 {
		oldFirst = int64(1-st.cur) * int64(st.slotSize)
	}
	return b.writeRecord(ctx, op, name, l, &id, blob, seq, prev, prevSeq, st.kind == storedNone, removeV1Extra, false, oldFirst)
}

// writeRecord writes a new record for name through a temp file and a
// rename: blob current in slot 0 with sequence number seq, prev (if not
// nil) in slot 1 with prevSeq. created says no file existed before;
// removeV1 that a layout-1 previous generation file goes; same that blob
// is the very blob the replaced file held (a migration). The replaced
// file is overwritten with zeros once the rename is durable, from
// oldFirst (its slot that is not current, for a record) on (scrub.go).
//
// A step that fails after the rename is undone only where that brings
// back a blob the replaced file held: a record that did not exist is
// removed; one whose slot 1 holds the replaced blob gets its slot 0
// invalidated. Otherwise (the replaced file held no readable blob, or a
// migration, whose slot 0 is the replaced blob) the new record stays as
// it is: invalidating slot 0 would leave a record with no valid slot,
// read as a damaged file (the blob lost), or make a migrated name's
// previous generation current.
func (b *Backend) writeRecord(ctx context.Context, op, name string, l location, id *[16]byte, blob []byte, seq uint64, prev []byte, prevSeq uint64, created, removeV1Extra, same bool, oldFirst int64) (v backends.Version, err error) {
	c := slotSizeFor(max(len(blob), len(prev)))
	buf := make([]byte, 2*c)
	h := slotHeader{index: 0, slotSize: c, id: *id, seq: seq, n: len(blob), sum: sum64(blob)}
	h.marshal(buf)
	copy(buf[slotHeaderSize:], blob)
	if prev != nil {
		ph := slotHeader{index: 1, slotSize: c, id: *id, seq: prevSeq, n: len(prev), sum: sum64(prev)}
		ph.marshal(buf[c:])
		copy(buf[c+slotHeaderSize:], prev)
	}

	fail := func(s Step, err error) (backends.Version, error) {
		return "", opError(op, name, s, writeKind(err), err)
	}
	tmp, f, err := b.createTemp(ctx, op, name, l)
	if err != nil {
		return fail(StepCreateTemp, err)
	}
	renamed := false
	var old *victim // the file renamed over, overwritten once the rename is durable
	defer func() {
		if renamed {
			return
		}
		old.release()
		f.close()
		// The temp file holds the sealed blobs too: overwritten (best
		// effort: the failure may be a dying disk) as it goes.
		tv := openVictim(l.dir, tmp, 0)
		if rmErr := l.dir.remove(tmp); rmErr != nil {
			err = fmt.Errorf("%w (and the temp file could not be removed: %v)", err, rmErr)
		}
		tv.scrub()
	}()
	if err := b.step(ctx, op, name, StepWrite, l.dir, tmp); err != nil {
		f.write(buf[:len(buf)/2]) // a fault midway, as a full disk would do it
		return fail(StepWrite, err)
	}
	if err := f.write(buf); err != nil {
		return fail(StepWrite, &fs.PathError{Op: "write", Path: l.dir.join(tmp), Err: err})
	}
	if err := b.step(ctx, op, name, StepFsync, l.dir, tmp); err != nil {
		return fail(StepFsync, err)
	}
	if err := f.sync(); err != nil {
		return fail(StepFsync, &fs.PathError{Op: "fsync", Path: l.dir.join(tmp), Err: err})
	}
	if err := b.step(ctx, op, name, StepClose, l.dir, tmp); err != nil {
		return fail(StepClose, err)
	}
	if err := f.close(); err != nil {
		return fail(StepClose, &fs.PathError{Op: "close", Path: l.dir.join(tmp), Err: err})
	}
	if err := b.step(ctx, op, name, StepRename, l.dir, l.file); err != nil {
		return fail(StepRename, err)
	}
	if !created {
		old = openVictim(l.dir, l.file, oldFirst)
	}
	if err := l.dir.rename(tmp, l.file); err != nil {
		return fail(StepRename, err)
	}
	renamed = true
	var prevFile *victim // the layout-1 previous generation file, removed below
	defer func() {
		if err != nil {
			old.release()
			prevFile.release()
		}
	}()
	undo := func(err error) error {
		switch {
		case created:
			return b.undoRewrite(l, true, err)
		case same:
			return fmt.Errorf("%w (the new record holds the same blob, so it stays)", err)
		case prev == nil:
			return fmt.Errorf("%w (the file replaced held no blob to go back to, so the new blob stays current)", err)
		}
		return b.undoRewrite(l, false, err)
	}
	if removeV1Extra {
		// The layout-1 previous generation is now slot 1 of the
		// record (or, for a Restore, the current blob): its own file
		// goes, in the same folder fsync. A crash that keeps this
		// removal but not the rename leaves the layout-1 file current
		// without its previous generation.
		if err := b.step(ctx, op, name, StepRemove, l.dir, l.prev); err != nil {
			return fail(StepRemove, undo(err))
		}
		prevFile = openVictim(l.dir, l.prev, 0)
		if err := l.dir.remove(l.prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail(StepRemove, undo(err))
		}
	}
	if err := b.syncDir(ctx, op, name, l.dir); err != nil {
		return fail(StepFsyncDir, undo(err))
	}
	// Durable: the replaced file and the removed previous generation
	// file are overwritten with zeros (scrub.go). Best effort: the new
	// blob is stored whatever happens to the old bytes.
	old.scrub()
	prevFile.scrub()
	return recVersionOf(id, seq), nil
}

// undoRewrite puts the old blob back as current after a failed step that
// followed the rename of a rewrite: the new record's slot 0 (the new
// blob) is invalidated, which leaves slot 1 (the old blob) current; a
// record that did not exist before is removed.
func (b *Backend) undoRewrite(l location, created bool, cause error) error {
	if created {
		err := l.dir.remove(l.file)
		if err == nil {
			err = l.dir.sync() // the undo must outlive a power cut too
		}
		if err != nil {
			return fmt.Errorf("%w (undoing the rename failed too, so the new blob may be current: %v)", cause, err)
		}
		return cause
	}
	f, _, err := l.dir.openFile(l.file, true)
	if err == nil {
		err = f.pwritev([][]byte{zeroBlock[:slotHeaderSize]}, 0)
		if err == nil {
			err = f.datasync() // the undo must outlive a power cut too
		}
		f.close()
	}
	if err != nil {
		return fmt.Errorf("%w (undoing the rename failed too, so the new blob is current: %v)", cause, err)
	}
	return cause
}

// Delete removes name and its previous generation if its version is
// ifVersion (backends.Absent never matches a stored blob).
func (b *Backend) Delete(ctx context.Context, name string, ifVersion backends.Version) error {
	const op = "delete"
	if err := b.enter(ctx, op, name, true); err != nil {
		return err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	e, err := b.lockName(ctx, op, name)
	if err != nil {
		return opError(op, name, StepLock, writeKind(err), err)
	}
	defer b.unlockName(e)
	e.dropRecord() // the file goes: its descriptor must not keep its blocks
	var sc scratch
	defer sc.release()
	f, st, err := b.openStored(ctx, op, name, l, false, 0, &sc)
	if err != nil {
		return opError(op, name, StepRead, readKind(err), err)
	}
	if f != nil {
		f.close()
	}
	if st.kind == storedNone {
		return opError(op, name, "", backends.ErrNotFound, nil)
	}
	if err := checkVersion(st, ifVersion); err != nil {
		return opError(op, name, "", backends.ErrConflict, err)
	}
	// A layout-1 previous generation first: a crash in between leaves
	// the current blob without one, never an orphaned previous
	// generation that Restore could bring back after the name was
	// deleted. A record holds both generations: one unlink. Each file
	// is overwritten with zeros once its removal is durable (scrub.go;
	// best effort: the name is deleted whatever happens to the bytes).
	var first int64
	if st.kind == storedV2 {
		first = int64(1-st.cur) * int64(st.slotSize)
	}
	var victims []*victim
	for _, file := range []string{l.prev, l.file} {
		if err := b.step(ctx, op, name, StepRemove, l.dir, file); err != nil {
			releaseAll(victims)
			return opError(op, name, StepRemove, writeKind(err), err)
		}
		v := openVictim(l.dir, file, first)
		if err := l.dir.remove(file); err != nil && !(file == l.prev && errors.Is(err, fs.ErrNotExist)) {
			v.release()
			releaseAll(victims)
			return opError(op, name, StepRemove, writeKind(err), err)
		}
		victims = append(victims, v)
	}
	if err := b.syncDir(ctx, op, name, l.dir); err != nil {
		releaseAll(victims)
		return opError(op, name, StepFsyncDir, writeKind(err), err)
	}
	scrubAll(victims)
	return nil
}

// Previous returns the previous generation of name and its version. It
// takes no lock, as Get.
func (b *Backend) Previous(ctx context.Context, name string) ([]byte, backends.Version, error) {
	const op = "previous"
	if err := b.enter(ctx, op, name, true); err != nil {
		return nil, "", err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	var sc scratch
	defer sc.release()
	f, st, err := b.openStored(ctx, op, name, l, false, wantPrev, &sc)
	if f != nil {
		f.close()
	}
	if err != nil {
		return nil, "", opError(op, name, "", readKind(err), err)
	}
	switch st.kind {
	case storedV2:
		if st.prev == nil {
			return nil, "", opError(op, name, "", backends.ErrNotFound, errNoPrevious)
		}
		h := &st.hdr[st.prevSlot]
		return st.prev, recVersionOf(&h.id, h.seq), nil
	case storedV1:
		if err := b.step(ctx, op, name, StepRead, l.dir, l.prev); err != nil {
			return nil, "", opError(op, name, "", readKind(err), err)
		}
		blob, err := l.dir.readFile(l.prev, backends.MaxBlobSize)
		if err != nil {
			return nil, "", opError(op, name, "", readKind(err), err)
		}
		return blob, v1Version(blob), nil
	}
	return nil, "", opError(op, name, "", backends.ErrNotFound, nil)
}

// DropPrevious durably removes every copy of name the backend keeps but
// the current blob (backends.Recoverer), under name's write lock: first
// every temp file a crashed writer left for name (".FILE.tmp-" and
// exactly 16 hex digits), then a layout-1 previous generation file, the
// folder fsynced after each; last, in a record, the slot that is not
// current is overwritten with zeros and fdatasynced. It returns nil when
// name has no previous generation or does not exist. The current slot
// holds nothing older either: every write zeroes what lies beyond its
// blob in its slot.
//
// The previous generation goes last, each step durable before the next:
// whoever treats "a previous generation exists" as "a purge may be
// pending" (the vault does, for the header) never sees a crash leave temp
// copies behind a removed previous generation. Temp files are only ever
// made under the write lock, so no concurrent writer loses one.
//
// Each file removed is overwritten with zeros and fdatasynced, through a
// descriptor opened before its removal, once the removal is durable; an
// error doing so is returned (the files are gone all the same).
//
// Overwriting is done through the file system: on a copy-on-write file
// system (btrfs, ZFS, APFS) or a flash translation layer the old blocks
// may survive on the device until they are reused (see SECURITY.md).
func (b *Backend) DropPrevious(ctx context.Context, name string) error {
	const op = "drop previous"
	if err := b.enter(ctx, op, name, true); err != nil {
		return err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	e, err := b.lockName(ctx, op, name)
	if err != nil {
		return opError(op, name, StepLock, writeKind(err), err)
	}
	defer b.unlockName(e)
	e.dropRecord() // this call zeroes a slot: the kept state would be wrong
	// Leftover files of name: temp files, then a layout-1 previous
	// generation.
	ents, err := l.dir.entries()
	if err != nil {
		return opError(op, name, StepRemove, writeKind(err), err)
	}
	tmpPrefix := "." + l.file + tmpInfix
	var temps []string
	hasPrev := false
	for _, e := range ents {
		switch {
		case e.name == l.prev:
			hasPrev = true
		case isTempOf(e.name, tmpPrefix):
			temps = append(temps, e.name)
		}
	}
	// remove removes files durably, then overwrites each with zeros
	// through a descriptor opened before its removal (scrub.go).
	remove := func(files []string) error {
		var victims []*victim
		defer func() { releaseAll(victims) }() // no-ops once scrubbed
		for _, f := range files {
			if err := b.step(ctx, op, name, StepRemove, l.dir, f); err != nil {
				return opError(op, name, StepRemove, writeKind(err), err)
			}
			v := openVictim(l.dir, f, 0)
			if err := l.dir.remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				v.release()
				return opError(op, name, StepRemove, writeKind(err), err)
			}
			victims = append(victims, v)
		}
		if len(files) == 0 {
			return nil
		}
		if err := b.syncDir(ctx, op, name, l.dir); err != nil {
			return opError(op, name, StepFsyncDir, writeKind(err), err)
		}
		if err := scrubAll(victims); err != nil {
			return opError(op, name, StepWrite, writeKind(err), fmt.Errorf("overwriting a removed copy with zeros: %w", err))
		}
		return nil
	}
	if err := remove(temps); err != nil {
		return err
	}
	if hasPrev {
		if err := remove([]string{l.prev}); err != nil {
			return err
		}
	}
	var sc scratch
	defer sc.release()
	f, st, err := b.openStored(ctx, op, name, l, true, 0, &sc)
	if err != nil {
		return opError(op, name, StepRead, readKind(err), err)
	}
	if f != nil {
		defer f.close()
	}
	if st.kind == storedV2 {
		i := 1 - st.cur
		off := int64(i) * int64(st.slotSize)
		if err := b.step(ctx, op, name, StepWrite, l.dir, l.file); err != nil {
			return opError(op, name, StepWrite, writeKind(err), err)
		}
		if err := f.pwritev(zeros(nil, st.slotSize), off); err != nil {
			return opError(op, name, StepWrite, writeKind(err), err)
		}
		if err := b.step(ctx, op, name, StepFsync, l.dir, l.file); err != nil {
			return opError(op, name, StepFsync, writeKind(err), err)
		}
		if err := f.datasync(); err != nil {
			return opError(op, name, StepFsync, writeKind(err), &fs.PathError{Op: "fdatasync", Path: f.path, Err: err})
		}
	}
	return nil
}

// isTempOf reports whether entry is a temp file that tempName made for
// the file whose prefix ("." + file + tmpInfix) is given: exactly 16
// lowercase hex digits follow it, so that the temp files of another name
// that merely starts the same way ("x" and "x.sealed.tmp-y") are never
// taken for these.
func isTempOf(entry, prefix string) bool {
	rest, ok := strings.CutPrefix(entry, prefix)
	if !ok || len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
