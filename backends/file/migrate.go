package file

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"

	"github.com/sessionvault/sessionvault/backends"
)

// MigrateReport says what Migrate did.
//
// The zero value reports that nothing was migrated.
type MigrateReport struct {
	Migrated []string // names moved from layout 1 to layout 2 (the header as backends.HeaderName)
	Current  int      // names already of layout 2
}

// Migrate moves every blob of the folder still stored in layout 1 (a bare
// file, with its previous generation in a file of its own) to layout 2,
// keeping both generations: the current blob becomes the record's current
// slot, the previous generation its other slot. Each name is moved under
// its write lock with one atomic rename (then the layout-1 previous
// generation file is removed, in the same folder fsync), so a crash or a
// concurrent writer leaves every name readable in one layout or the
// other, and running Migrate again finishes the job. Versions of moved
// blobs change (layout 1 hashes the bytes; layout 2 numbers writes): a
// writer holding a version from before gets backends.ErrConflict and
// reads again.
//
// A folder needs no migration to be used: the first write of a layout-1
// blob moves it (`vaultctl migrate-layout` runs Migrate for a whole
// folder at once).
func (b *Backend) Migrate(ctx context.Context) (MigrateReport, error) {
	var rep MigrateReport
	names, err := b.List(ctx)
	if err != nil {
		return rep, err
	}
	for _, name := range append([]string{backends.HeaderName}, names...) {
		moved, err := b.migrateOne(ctx, name)
		if err != nil {
			return rep, err
		}
		switch moved {
		case storedV1:
			rep.Migrated = append(rep.Migrated, name)
		case storedV2:
			rep.Current++
		}
	}
	return rep, nil
}

// migrateOne moves name to layout 2 if it is stored in layout 1, and
// returns what it found.
func (b *Backend) migrateOne(ctx context.Context, name string) (storedKind, error) {
	const op = "migrate"
	if err := b.enter(ctx, op, name, true); err != nil {
		return 0, err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	e, err := b.lockName(ctx, op, name)
	if err != nil {
		return 0, opError(op, name, StepLock, writeKind(err), err)
	}
	defer b.unlockName(e)
	var sc scratch
	defer sc.release()
	f, st, err := b.openStored(ctx, op, name, l, false, 0, &sc)
	if err != nil {
		return 0, opError(op, name, StepRead, readKind(err), err)
	}
	if f != nil {
		f.close()
	}
	if st.kind != storedV1 {
		return st.kind, nil
	}
	e.dropRecord() // the file is replaced
	prev, err := l.dir.readFile(l.prev, backends.MaxBlobSize)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, opError(op, name, StepRead, readKind(err), err)
	}
	var id [16]byte
	rand.Read(id[:])
	if _, err := b.writeRecord(ctx, op, name, l, &id, st.blob, 2, prev, 1, false, true, true, 0); err != nil {
		return 0, err
	}
	return storedV1, nil
}
