// Package file is a backends.Backend that keeps a vault in one folder of
// the local filesystem:
//
//	DIR/                      0700, owned by the user
//	DIR/vault.hdr             the vault header (backends.HeaderName), 0600
//	DIR/.vault.hdr.prev       its previous generation
//	DIR/sessions/             0700
//	DIR/sessions/NAME.sealed  one sealed session per name, 0600
//	DIR/sessions/.NAME.sealed.prev   its previous generation
//	DIR/locks/                0700: lock files, never deleted
//	DIR/locks/.write.lock     serialises compare-and-set writes
//	DIR/locks/NAME.lock       one per name given to Lock
//
// # Writes
//
// Every Put writes the blob to a temp file in the target's own folder
// (".NAME.sealed.tmp-RANDOM", created with O_EXCL|O_NOFOLLOW and mode
// 0600 set again with fchmod whatever the umask), fsyncs and closes it.
// Then, holding the vault's write lock (flock(2) on locks/.write.lock,
// plus a mutex inside the process), it checks the stored version,
// hard-links the current file under a second temp name, renames the temp
// file over the target, renames that link over the previous generation
// and fsyncs the folder. Temp files and links are removed on every error
// path; their names start with "." so List never shows them, and
// rename(2) is atomic, so a reader sees the old blob or the new one,
// whole. Readers take no lock: they never wait for a writer. The write
// lock is not held while the temp file is written and fsynced.
//
// # Locks
//
// Lock (the lock a session write takes around its read-modify-write)
// is an flock(2) on locks/NAME.lock plus a lock inside the process. The
// Backend keeps each lock file open between Locks, for the names in use
// and the most recently used idle ones (see Lock), and checks its path
// with one fstatat(2) before every flock, so a lock file replaced or
// opened up to others is opened again and refused as on a first open.
//
// Keeping the previous generation costs no extra fsync: the link(2) and
// the two rename(2)s change the same folder, and the one folder fsync
// that a durable rename needs anyway makes them all durable. It costs one
// link(2) and one rename(2) more than a bare durable write. After a crash
// before that fsync the previous generation may be one generation older
// than it should be (the intended one then survives as a stray temp
// link); it is never torn.
//
// A failed call leaves the old blob current. Up to and including the
// main rename, nothing changed (the previous generation included). If
// renaming the previous generation fails, the main rename is undone. If
// the folder fsync fails, the old blob is put back as current and the
// new one is kept as the previous generation (so that a Restore whose
// fsync fails loses nothing); which of the two a crash would leave on
// disk is then unknown. Should an undo fail too, the error says so and
// the new blob stays current. On macOS every fsync is F_FULLFSYNC.
//
// # Versions
//
// A blob's Version is the hex SHA-256 of its bytes: it changes whenever
// the content does (sealed blobs never repeat, as each seal draws a fresh
// nonce), needs no metadata that a copy or a restore from backup would
// lose, and lets a compare-and-set check the stored bytes themselves.
// Writing the same bytes again yields the same version, which is sound:
// a writer whose check passes has read exactly what is stored.
//
// # Refusals
//
// The backend refuses, with an *UnsafeError (matching
// backends.ErrPermission) that names the path and the fix: a symbolic
// link at the folder, at sessions/ or locks/, at the header, at a
// session or lock file (every open uses O_NOFOLLOW and checks the opened
// descriptor with fstat, so there is no check-then-open race; files are
// reached through folder descriptors with openat(2), so a folder swapped
// after New cannot redirect them either); a file or folder that group or
// others can access; one owned by another user; a file where a folder
// should be and anything but a regular file where a file should be (a
// FIFO planted at a session path does not even block the open). Stray
// files in the folders are ignored and never listed.
//
// The folders above the vault folder are checked too, the way OpenSSH's
// StrictModes checks ~/.ssh (ancestors_unix.go): each one from / down must
// be owned by root or this user and not writable by group or others
// unless it has the sticky bit (/tmp); a symbolic link on the way is
// followed only if root or this user owns it, and its target is checked
// the same way. A folder above that someone else could write would let
// them move the vault folder away and put theirs in its place. The check
// runs when New opens the folder (before creating it), by path, and ends
// by checking that the folder opened is the one the checked path leads to.
//
// # Platforms
//
// All of the above holds on Linux, macOS and the BSDs. On Windows the
// backend is reduced: see the package's Windows notes in New.
package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Layout and limits.
const (
	headerFile    = "vault.hdr"   // the file that holds backends.HeaderName
	sessionsDir   = "sessions"    // the folder of sealed sessions
	locksDir      = "locks"       // the folder of lock files
	sessionExt    = ".sealed"     // suffix of a session file
	prevSuffix    = ".prev"       // suffix of a previous generation (after a leading ".")
	tmpInfix      = ".tmp-"       // temp files: "." + file + tmpInfix + 16 hex digits
	lockExt       = ".lock"       // suffix of a lock file
	writeLockFile = ".write.lock" // no valid name maps to it: names never start with "." except ".vault"

	// tempAttempts bounds retries when a random temp name already exists
	// (left by a crashed writer): 2^-64 odds each, so more than one
	// retry means something else is wrong.
	tempAttempts = 4

	// Lock polls flock(2) with LOCK_NB (so that ctx can end the wait)
	// from lockPollMin, doubling up to lockPollMax: a held Lock guards a
	// token refresh (a network round trip), so tens of milliseconds of
	// extra wait are noise, while a tight loop would burn a core.
	lockPollMin = time.Millisecond
	lockPollMax = 25 * time.Millisecond

	// The write lock is held only for a read, a compare, a link, a
	// rename and a folder fsync (well under a few milliseconds), so
	// writers waiting for it poll faster.
	writePollMin = 20 * time.Microsecond
	writePollMax = 2 * time.Millisecond

	// maxIdleLocks bounds the lock files a Backend keeps open for names
	// not locked at the moment (see Lock): reopening one costs about
	// ten microseconds on every session write, while a descriptor per
	// name for the Backend's life would grow without bound in a process
	// that walks thousands of sessions. 64 covers the sessions a process
	// writes again and again (a bot has a handful) and stays far below
	// the common soft limit of 1,024 descriptors.
	maxIdleLocks = 64
)

// StepInfo describes one step of an operation, for WithStepHook.
type StepInfo struct {
	Op   string // "put", "restore", "delete", "get", "previous", "lock"
	Name string // the blob or lock name
	Step Step   // the step about to run
	Path string // the file the step acts on (the temp file for create temp, write, fsync, close)
}

// Option configures a Backend.
type Option func(*Backend)

// WithStepHook makes the backend call fn before every step of every
// write (and before each read of a stored file), with the step and the
// path it acts on. If fn returns an error, the step fails with that error
// instead of running, exactly as if the system call had returned it; the
// backend then cleans up as it would after a real failure (for StepWrite
// it first writes half of the blob, as a disk that fills up would).
// fn may also block, to hold a write at a given step.
//
// It exists for fault-injection tests: failing each step with EIO, ENOSPC
// or EROFS, which a real filesystem cannot be made to produce on demand.
// fn cannot make a step succeed that would fail, nor skip a check.
func WithStepHook(fn func(ctx context.Context, s StepInfo) error) Option {
	return func(b *Backend) { b.hook = fn }
}

// Backend is a vault folder. It implements backends.Backend,
// backends.Locker and backends.Recoverer, and is safe for concurrent use
// by several goroutines and several processes.
type Backend struct {
	path      string
	root      *sysDir
	sessions  *sysDir
	locks     *sysDir
	wlock     *sysLock      // locks/.write.lock, held by one writer of this process at a time
	wsem      chan struct{} // the in-process half of the write lock
	lockFiles lockFiles     // the lock files of Lock, kept open (lock.go)
	hook      func(ctx context.Context, s StepInfo) error

	closeMu sync.RWMutex // held shared by every call, exclusively by Close
	closed  bool
	done    chan struct{} // closed by Close: ends waits in Lock
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Locker    = (*Backend)(nil)
	_ backends.Recoverer = (*Backend)(nil)
)

// New opens the vault folder dir, creating it with mode 0700 if it does
// not exist (its parent must), and with it the sessions and locks
// folders. It refuses a dir that is a symbolic link, not a folder, owned
// by another user or accessible by group or others, with an
// *UnsafeError that says what to fix.
//
// On Windows (built, but not tested on these machines), New works with
// these reductions: no owner or mode checks (Windows keeps permissions in
// ACLs, which the backend does not inspect: keep the folder under the
// user's profile); a symbolic link or junction at a stored file is
// refused on the opened handle (FILE_FLAG_OPEN_REPARSE_POINT), but at a
// folder only by a check before use, which a local attacker able to
// write the parent folder could race; the folder is not fsynced after a
// rename (Windows cannot; NTFS journals the rename); Lock and the write
// lock use LockFileEx. Other platforms than Linux, macOS, the BSDs and
// Windows get backends.ErrUnavailable.
func New(dir string, opts ...Option) (*Backend, error) {
	if dir == "" {
		return nil, &backends.OpError{Backend: "file", Op: "open", Kind: backends.ErrUnavailable, Err: errors.New("empty folder path")}
	}
	dir = filepath.Clean(dir)
	b := &Backend{path: dir, wsem: make(chan struct{}, 1), done: make(chan struct{})}
	for _, o := range opts {
		o(b)
	}
	fail := func(err error) (*Backend, error) {
		b.closeFDs()
		return nil, &backends.OpError{Backend: "file", Op: "open", Kind: kindOf(err), Err: err}
	}
	var err error
	if b.root, err = openRoot(dir, true); err != nil {
		return fail(err)
	}
	if b.sessions, err = b.root.subdir(sessionsDir, true); err != nil {
		return fail(err)
	}
	if b.locks, err = b.root.subdir(locksDir, true); err != nil {
		return fail(err)
	}
	if b.wlock, err = b.locks.openLock(writeLockFile); err != nil {
		return fail(err)
	}
	return b, nil
}

// Path returns the vault folder's path, as given to New (cleaned).
func (b *Backend) Path() string { return b.path }

func (b *Backend) closeFDs() {
	if b.wlock != nil {
		b.wlock.close()
	}
	for _, d := range []*sysDir{b.locks, b.sessions, b.root} {
		if d != nil {
			d.close()
		}
	}
}

// Close releases the folder and lock descriptors; it waits for calls in
// progress (but not for Locks waiting for a lock: they fail with
// backends.ErrUnavailable). Later calls fail with backends.ErrUnavailable.
// Locks taken with Lock stay held until unlocked (their lock files are
// closed then). A second Close is a no-op.
func (b *Backend) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.done)
	b.lockFiles.close()
	b.closeFDs()
	return nil
}

// location is where a name lives: its folder and file names.
type location struct {
	dir  *sysDir
	file string // "vault.hdr" or "NAME.sealed"
	prev string // "." + file + ".prev"
}

func (b *Backend) locate(name string) location {
	if name == backends.HeaderName {
		return location{dir: b.root, file: headerFile, prev: "." + headerFile + prevSuffix}
	}
	file := name + sessionExt
	return location{dir: b.sessions, file: file, prev: "." + file + prevSuffix}
}

// opError builds the error of a failed call.
func opError(op, name string, step Step, kind, err error) error {
	return &backends.OpError{Backend: "file", Op: op, Name: name, Step: string(step), Kind: kind, Err: err}
}

// enter validates name (unless it is empty: List) and ctx and takes the
// close lock shared. On success the caller must call b.closeMu.RUnlock.
func (b *Backend) enter(ctx context.Context, op, name string, hasName bool) error {
	if hasName {
		if err := backends.ValidateName(name); err != nil {
			return opError(op, name, "", backends.ErrInvalidName, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return opError(op, name, "", nil, err)
	}
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return opError(op, name, "", backends.ErrUnavailable, errClosed)
	}
	return nil
}

// step runs the hook, if any, before step s on path.
func (b *Backend) step(ctx context.Context, op, name string, s Step, d *sysDir, file string) error {
	if b.hook == nil {
		return nil
	}
	path := d.join(file)
	if err := b.hook(ctx, StepInfo{Op: op, Name: name, Step: s, Path: path}); err != nil {
		return &fs.PathError{Op: string(s), Path: path, Err: err}
	}
	return nil
}

// version is a blob's Version: the hex SHA-256 of its bytes.
func version(blob []byte) backends.Version {
	sum := sha256.Sum256(blob)
	return backends.Version(hex.EncodeToString(sum[:]))
}

// Get returns the blob stored under name and its version. It takes no
// lock. A file over backends.MaxBlobSize is refused with
// backends.ErrTooLarge before anything is allocated for it.
func (b *Backend) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	if err := b.enter(ctx, "get", name, true); err != nil {
		return nil, "", err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	blob, err := b.read(ctx, "get", name, l.dir, l.file)
	if err != nil {
		return nil, "", opError("get", name, "", readKind(err), err)
	}
	return blob, version(blob), nil
}

func (b *Backend) read(ctx context.Context, op, name string, d *sysDir, file string) ([]byte, error) {
	if err := b.step(ctx, op, name, StepRead, d, file); err != nil {
		return nil, err
	}
	return d.readFile(file, backends.MaxBlobSize)
}

// Put stores blob under name if the stored version is ifVersion, as
// described in the package documentation, and returns the new version.
func (b *Backend) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	if err := b.enter(ctx, "put", name, true); err != nil {
		return "", err
	}
	defer b.closeMu.RUnlock()
	if len(blob) > backends.MaxBlobSize {
		return "", opError("put", name, "", backends.ErrTooLarge, fmt.Errorf("%d bytes, limit %d", len(blob), backends.MaxBlobSize))
	}
	return b.write(ctx, "put", name, b.locate(name), blob, ifVersion, false)
}

// write runs the steps of a write. With locked, the caller holds the
// write lock already.
func (b *Backend) write(ctx context.Context, op, name string, l location, blob []byte, ifVersion backends.Version, locked bool) (v backends.Version, err error) {
	fail := func(s Step, err error) (backends.Version, error) {
		return "", opError(op, name, s, writeKind(err), err)
	}
	tmp, f, err := b.createTemp(ctx, op, name, l)
	if err != nil {
		return fail(StepCreateTemp, err)
	}
	renamed := false
	defer func() {
		if renamed {
			return
		}
		f.close()
		if rmErr := l.dir.remove(tmp); rmErr != nil {
			err = fmt.Errorf("%w (and the temp file could not be removed: %v)", err, rmErr)
		}
	}()

	if err := b.step(ctx, op, name, StepWrite, l.dir, tmp); err != nil {
		f.write(blob[:len(blob)/2]) // a fault midway, as a full disk would do it
		return fail(StepWrite, err)
	}
	if err := f.write(blob); err != nil {
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
	v = version(blob)

	if !locked {
		unlock, err := b.lockWrites(ctx, op, name)
		if err != nil {
			return fail(StepLock, err)
		}
		defer unlock()
	}
	existed, err := b.check(ctx, op, name, l, ifVersion)
	if err != nil {
		return "", err
	}
	// The current file (O) gets a second, temporary name first, so that
	// the previous generation (P) is replaced only once the new blob (N)
	// is in place: a failure up to the main rename leaves O current and
	// P previous, untouched.
	keep := ""
	if existed {
		keep = tempName(l.file, rand.Uint64())
		if err := b.step(ctx, op, name, StepLinkPrev, l.dir, keep); err != nil {
			return fail(StepLinkPrev, err)
		}
		if err := l.dir.link(l.file, keep); err != nil {
			return fail(StepLinkPrev, err)
		}
		defer func() {
			if keep == "" {
				return
			}
			if rmErr := l.dir.remove(keep); rmErr != nil {
				err = fmt.Errorf("%w (and the temp link could not be removed: %v)", err, rmErr)
			}
		}()
	}
	if err := b.step(ctx, op, name, StepRename, l.dir, l.file); err != nil {
		return fail(StepRename, err)
	}
	err = l.dir.rename(tmp, l.file)
	if errors.Is(err, fs.ErrNotExist) {
		// A DropPrevious (which removes the temp files a crashed write
		// left) took ours while we wrote it, before we held the write
		// lock. We hold it now, so nothing else removes temp files:
		// write the blob again, under the lock, and rename that.
		f.close()
		tmp, f, err = b.createTemp(ctx, op, name, l)
		if err != nil {
			return fail(StepCreateTemp, err)
		}
		if err := f.write(blob); err != nil {
			return fail(StepWrite, &fs.PathError{Op: "write", Path: l.dir.join(tmp), Err: err})
		}
		if err := f.sync(); err != nil {
			return fail(StepFsync, &fs.PathError{Op: "fsync", Path: l.dir.join(tmp), Err: err})
		}
		if err := f.close(); err != nil {
			return fail(StepClose, &fs.PathError{Op: "close", Path: l.dir.join(tmp), Err: err})
		}
		err = l.dir.rename(tmp, l.file)
	}
	if err != nil {
		return fail(StepRename, err)
	}
	renamed = true
	if existed {
		err := b.step(ctx, op, name, StepRenamePrev, l.dir, l.prev)
		if err == nil {
			err = l.dir.rename(keep, l.prev)
		}
		if err != nil {
			// Put O back: N was never acknowledged; P stays previous.
			if undo := l.dir.rename(keep, l.file); undo != nil {
				err = fmt.Errorf("%w (undoing the rename failed too, so the new blob is current: %v)", err, undo)
			} else {
				keep = ""
			}
			return fail(StepRenamePrev, err)
		}
		keep = ""
	}
	if err := b.syncDir(ctx, op, name, l.dir); err != nil {
		// Undo, so that a failed call leaves the old blob current as
		// every other failed step does: O current again, and N (not
		// lost: for Restore it is the good copy) kept as the previous
		// generation. P is gone by now.
		return fail(StepFsyncDir, b.undo(l, existed, err))
	}
	return v, nil
}

func (b *Backend) syncDir(ctx context.Context, op, name string, d *sysDir) error {
	if err := b.step(ctx, op, name, StepFsyncDir, d, "."); err != nil {
		return err
	}
	if err := d.sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: d.path, Err: err}
	}
	return nil
}

// createTemp creates a fresh temp file next to l.file.
func (b *Backend) createTemp(ctx context.Context, op, name string, l location) (string, *sysFile, error) {
	var err error
	for range tempAttempts {
		tmp := tempName(l.file, rand.Uint64())
		if err = b.step(ctx, op, name, StepCreateTemp, l.dir, tmp); err != nil {
			return "", nil, err
		}
		var f *sysFile
		if f, err = l.dir.createTemp(tmp); err == nil {
			return tmp, f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return "", nil, err
}

// undo puts the old blob back after a failed folder fsync: with existed,
// file=N prev=O becomes file=O prev=N; without, N is removed.
func (b *Backend) undo(l location, existed bool, cause error) error {
	fail := func(err error) error {
		return fmt.Errorf("%w (undoing the rename failed too, so the new blob is current: %v)", cause, err)
	}
	if !existed {
		if err := l.dir.remove(l.file); err != nil {
			return fail(err)
		}
		return cause
	}
	tmpN := tempName(l.file, rand.Uint64())
	if err := l.dir.link(l.file, tmpN); err != nil {
		return fail(err)
	}
	if err := l.dir.rename(l.prev, l.file); err != nil {
		l.dir.remove(tmpN)
		return fail(err)
	}
	if err := l.dir.rename(tmpN, l.prev); err != nil {
		l.dir.remove(tmpN)
		return fmt.Errorf("%w (the old blob is current again, but its previous generation is lost: %v)", cause, err)
	}
	return cause
}

// tempName is the name of a temp file for file: a dot-file, so that List
// never shows it.
func tempName(file string, r uint64) string {
	buf := make([]byte, 0, 1+len(file)+len(tmpInfix)+16)
	buf = append(buf, '.')
	buf = append(buf, file...)
	buf = append(buf, tmpInfix...)
	for i := 60; i >= 0; i -= 4 {
		buf = append(buf, "0123456789abcdef"[r>>uint(i)&0xf])
	}
	return string(buf)
}

// check compares the stored version of l with ifVersion, under the write
// lock, and reports whether a blob is stored. A mismatch is an
// *backends.OpError matching ErrConflict.
func (b *Backend) check(ctx context.Context, op, name string, l location, ifVersion backends.Version) (existed bool, err error) {
	if err := b.step(ctx, op, name, StepRead, l.dir, l.file); err != nil {
		return false, opError(op, name, StepRead, writeKind(err), err)
	}
	if ifVersion == backends.Any || ifVersion == backends.Absent {
		// Only whether it exists matters; open it anyway, so that a
		// symbolic link or an unsafe file is refused, not replaced.
		err = l.dir.stat(l.file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil:
			return false, opError(op, name, StepRead, readKind(err), err)
		case ifVersion == backends.Absent:
			return true, opError(op, name, "", backends.ErrConflict, &conflictError{"a blob is stored (want none)"})
		}
		return true, nil
	}
	cur, err := l.dir.readFile(l.file, backends.MaxBlobSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, opError(op, name, "", backends.ErrConflict, &conflictError{"no blob is stored (want version " + short(ifVersion) + ")"})
	case err != nil:
		return false, opError(op, name, StepRead, readKind(err), err)
	}
	if cv := version(cur); cv != ifVersion {
		return true, opError(op, name, "", backends.ErrConflict, &conflictError{"stored version " + short(cv) + ", want " + short(ifVersion)})
	}
	return true, nil
}

// short abbreviates a version for a message.
func short(v backends.Version) string {
	s := string(v)
	if len(s) > 12 {
		s = s[:12] + "..."
	}
	return strconv.Quote(s)
}

// lockWrites takes the vault's write lock: the in-process semaphore, then
// flock(2) on locks/.write.lock, polling so that ctx can end the wait.
func (b *Backend) lockWrites(ctx context.Context, op, name string) (unlock func(), err error) {
	if err := b.step(ctx, op, name, StepLock, b.locks, writeLockFile); err != nil {
		return nil, err
	}
	select {
	case b.wsem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	delay := writePollMin
	for {
		ok, err := b.wlock.tryLock()
		if err != nil {
			<-b.wsem
			return nil, err
		}
		if ok {
			return func() {
				b.wlock.unlock()
				<-b.wsem
			}, nil
		}
		if err := sleep(ctx, b.done, delay); err != nil {
			<-b.wsem
			return nil, err
		}
		delay = min(2*delay, writePollMax)
	}
}

// sleep waits d, or until ctx ends or done is closed.
func sleep(ctx context.Context, done <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return errClosed
	}
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
	unlock, err := b.lockWrites(ctx, op, name)
	if err != nil {
		return opError(op, name, StepLock, writeKind(err), err)
	}
	defer unlock()
	existed, err := b.check(ctx, op, name, l, ifVersion)
	switch {
	case !existed && (err == nil || errors.Is(err, backends.ErrConflict)):
		return opError(op, name, "", backends.ErrNotFound, nil)
	case err != nil:
		return err // a conflict (Absent never deletes a stored blob) or a refusal
	}
	// The previous generation first: a crash in between leaves the
	// current blob without one, never an orphaned previous generation
	// that Restore could bring back after the name was deleted.
	for _, file := range []string{l.prev, l.file} {
		if err := b.step(ctx, op, name, StepRemove, l.dir, file); err != nil {
			return opError(op, name, StepRemove, writeKind(err), err)
		}
		if err := l.dir.remove(file); err != nil && !(file == l.prev && errors.Is(err, fs.ErrNotExist)) {
			return opError(op, name, StepRemove, writeKind(err), err)
		}
	}
	if err := b.syncDir(ctx, op, name, l.dir); err != nil {
		return opError(op, name, StepFsyncDir, writeKind(err), err)
	}
	return nil
}

// List returns the session names stored in the sessions folder, sorted.
// Anything else there (temp files, previous generations, stray files,
// symbolic links, folders, names that ValidateName refuses) is ignored.
func (b *Backend) List(ctx context.Context) ([]string, error) {
	if err := b.enter(ctx, "list", "", false); err != nil {
		return nil, err
	}
	defer b.closeMu.RUnlock()
	ents, err := b.sessions.entries()
	if err != nil {
		return nil, opError("list", "", "", kindOf(err), err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.name, sessionExt)
		// An entry under a session's file name that is not a regular
		// file (a planted symlink, a FIFO, a folder) is listed all the
		// same: Get refuses it with ErrPermission, so a caller that
		// walks the vault (status, verify, gc) reports it instead of
		// silently skipping a session.
		if !ok || name == backends.HeaderName || backends.ValidateName(name) != nil {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Previous returns the previous generation of name and its version.
func (b *Backend) Previous(ctx context.Context, name string) ([]byte, backends.Version, error) {
	const op = "previous"
	if err := b.enter(ctx, op, name, true); err != nil {
		return nil, "", err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	blob, err := b.read(ctx, op, name, l.dir, l.prev)
	if err != nil {
		return nil, "", opError(op, name, "", readKind(err), err)
	}
	return blob, version(blob), nil
}

// Restore makes the previous generation of name current again if the
// current version is ifVersion, writing it exactly as Put does (the
// replaced blob becomes the previous generation), under the write lock
// from the read of the previous generation to the rename.
func (b *Backend) Restore(ctx context.Context, name string, ifVersion backends.Version) (backends.Version, error) {
	const op = "restore"
	if err := b.enter(ctx, op, name, true); err != nil {
		return "", err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	unlock, err := b.lockWrites(ctx, op, name)
	if err != nil {
		return "", opError(op, name, StepLock, writeKind(err), err)
	}
	defer unlock()
	prev, err := b.read(ctx, op, name, l.dir, l.prev)
	if err != nil {
		return "", opError(op, name, StepRead, readKind(err), err)
	}
	return b.write(ctx, op, name, l, prev, ifVersion, true)
}

// DropPrevious removes every temp file or temp link of name that a
// crashed write left behind (".FILE.tmp-" and 16 hex digits), then the
// previous generation of name, fsyncing the folder after each, under the
// write lock (backends.Recoverer). It never touches the current file.
//
// A Put of the same name running at the same moment (in this process or
// another) may have its temp file removed, as it writes it before it
// takes the write lock: it then finds it gone at its rename, and writes
// the blob again under the write lock, so it still succeeds. The vault
// calls DropPrevious under its header lock, once a credential or a key
// generation is retired.
func (b *Backend) DropPrevious(ctx context.Context, name string) error {
	const op = "drop previous"
	if err := b.enter(ctx, op, name, true); err != nil {
		return err
	}
	defer b.closeMu.RUnlock()
	l := b.locate(name)
	unlock, err := b.lockWrites(ctx, op, name)
	if err != nil {
		return opError(op, name, StepLock, writeKind(err), err)
	}
	defer unlock()
	ents, err := l.dir.entries()
	if err != nil {
		return opError(op, name, StepRemove, kindOf(err), err)
	}
	// The temp copies first, the previous generation last, each step
	// made durable before the next: whoever treats "a previous
	// generation exists" as "a purge may be pending" (the vault does, for
	// the header) then never sees a crash leave temp copies behind a
	// removed previous generation.
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
	remove := func(files []string) error {
		for _, f := range files {
			if err := b.step(ctx, op, name, StepRemove, l.dir, f); err != nil {
				return opError(op, name, StepRemove, writeKind(err), err)
			}
			if err := l.dir.remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return opError(op, name, StepRemove, writeKind(err), err)
			}
		}
		if len(files) == 0 {
			return nil
		}
		if err := b.syncDir(ctx, op, name, l.dir); err != nil {
			return opError(op, name, StepFsyncDir, writeKind(err), err)
		}
		return nil
	}
	if err := remove(temps); err != nil {
		return err
	}
	if hasPrev {
		return remove([]string{l.prev})
	}
	return nil
}

// isTempOf reports whether entry is a temp file or link that tempName
// made for the file whose prefix ("." + file + tmpInfix) is given:
// exactly 16 lowercase hex digits follow it, so that the temp files of
// another name that merely starts the same way ("x" and
// "x.sealed.tmp-y") are never taken for these.
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
