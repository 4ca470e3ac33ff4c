// Package file is a backends.Backend that keeps a vault in one folder of
// the local filesystem:
//
//	DIR/                      0700, owned by the user
//	DIR/vault.hdr             the vault header (backends.HeaderName), 0600
//	DIR/sessions/             0700
//	DIR/sessions/NAME.sealed  one sealed session per name, 0600
//	DIR/locks/                0700: lock files, never deleted
//	DIR/locks/.NAME.wlock     the write lock of a name (".vault" for the header)
//	DIR/locks/NAME.lock       one per name given to Lock
//
// # Layout 2: records updated in place
//
// Each stored file is a record (docs/FORMAT.md, section 15): two slots of
// the same size, a multiple of 4 KiB, each holding a 64-byte header (a
// sequence number, the blob's length, a checksum of the blob and one of
// the header) and a blob. The slot with the highest sequence number whose
// checksums hold is current; the other slot holds the previous
// generation. The whole file is written (zeros included) when it is
// created, so its blocks are allocated and written on disk.
//
// A Put of a name whose record has room for the blob (every update of a
// session but the one that outgrows its slot) is an update in place:
// holding the name's write lock (flock(2) on locks/.NAME.wlock, plus a
// lock inside the process), it reads the record, checks the stored
// version, writes header, blob and zeros over the rest of the slot's old
// blob into the slot that is not current, with one pwritev(2), then calls
// fdatasync(2) once (F_FULLFSYNC on macOS, FlushFileBuffers on Windows).
// The record stays open between a Backend's updates (reccache.go): when
// its path still leads to the open file (one fstatat(2); on Linux a
// statx(2) that does not ask for the timestamps, see stat_linux.go) and
// both slot headers read back (one pread(2)) as this Backend last wrote
// them, no other writer touched it, and the update skips reading and
// checking the current blob. An update of a session then makes these
// system calls: flock and fstatat for the write lock, statx (fstatat) and
// pread of the record, pwritev, fdatasync, and one flock to unlock (a
// session.Manager takes the session's Lock, two flocks and an fstatat
// more, only for a refresh or after a conflict).
// Writing over blocks the file has changes no metadata a read needs, so
// that is one data write and one cache flush, the least a durable update
// can cost (ext4 without a journal also writes the inode's block when the
// modification time moved, as for any file written in place). A write torn by a crash or a power cut leaves that slot's
// checksums failing, so the blob before it stays current; the blob it
// overwrote, two generations back, is gone.
//
// Readers take no lock. A reader reads both slot headers, then the blob
// of the newest; if that blob's checksum fails, it takes the other slot
// only once a second read of both headers shows them unchanged (no write
// completed in between), and starts again otherwise. So it returns the
// newest generation whose write completed before it began, or a newer
// one, whole, never a mix.
//
// The first Put of a name, a blob too big for its slots, and the first
// write of a layout-1 file go through a temp file in the target's own
// folder (".NAME.sealed.tmp-RANDOM", created with O_EXCL|O_NOFOLLOW and
// mode 0600 set again with fchmod whatever the umask), written whole,
// fsynced, closed and renamed over the target, then the folder fsynced.
// The new record holds the blob in slot 0 and the blob it replaces in slot
// 1, with its sequence number (so its version stays what it was), and
// slots a quarter larger than the larger of the two. A failed call leaves
// the old blob current (see Put).
//
// # Layout 1
//
// Folders written by the layout-1 code hold each blob as a bare file
// (NAME.sealed, vault.hdr) and its previous generation as a file of its
// own (.NAME.sealed.prev, .vault.hdr.prev). They open as they are: a file
// that is not a record with a valid slot is read as a layout-1 blob. The
// first write of such a name moves it to layout 2 (the old blob becomes
// the record's previous generation, and its own previous generation file
// is removed in the same folder fsync); Migrate (vaultctl migrate-layout)
// moves a whole folder, keeping both generations of every name. All
// processes that write one folder must run layout-2 code: layout-1 code
// would read a record as a damaged blob.
//
// # Versions
//
// The Version of a blob in a record is "SEQ@ID": its slot's sequence
// number and the record's 128-bit random id, drawn when the record file
// is created. Every write numbers its slot one above the highest in the
// record, and a record created again after a Delete has a new id, so a
// version never repeats for a name, and a compare-and-set reads only the
// slot headers and the current blob's checksum, never a hash of the blob.
// A layout-1 file's Version is the hex SHA-256 of its bytes, as before.
//
// # Locks
//
// Lock (the lock a session write takes around its read-modify-write)
// is an flock(2) on locks/NAME.lock plus a lock inside the process. The
// Backend keeps each lock file open between Locks, for the names in use
// and the most recently used idle ones (see Lock), and checks its path
// with one fstatat(2) before every flock, so a lock file replaced or
// opened up to others is opened again and refused as on a first open.
// Write locks are kept open and checked the same way, and with each the
// name's record.
//
// The session lock (Lock) and the write lock are not redundant: writers
// that do not take Lock on the name (a key rotation re-seals every
// session under the header's Lock only) take only the write lock, so a
// Put must take it whether or not its caller holds Lock; and Lock guards
// a whole read-modify-write (a token refresh: a network round trip),
// during which the write lock must stay free for them.
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
	"errors"
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
	headerFile   = "vault.hdr" // the file that holds backends.HeaderName
	sessionsDir  = "sessions"  // the folder of sealed sessions
	locksDir     = "locks"     // the folder of lock files
	sessionExt   = ".sealed"   // suffix of a session file
	prevSuffix   = ".prev"     // suffix of a previous generation (after a leading ".")
	tmpInfix     = ".tmp-"     // temp files: "." + file + tmpInfix + 16 hex digits
	lockExt      = ".lock"     // suffix of a lock file
	writeLockExt = ".wlock"    // write locks: "." + name + writeLockExt, which no name given to Lock maps to

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
	// the common soft limit of 1,024 descriptors: an idle name keeps at
	// most three (its lock file, its write lock file and its record),
	// so 192 at most.
	maxIdleLocks = 64

	// scrubChunk is how many zero bytes one pwritev(2) writes over a
	// removed file (scrub.go): 256 references to one 4 KiB block of
	// zeros, far below IOV_MAX (1,024), and 1 MiB, so that a record of
	// the largest blob takes three calls.
	scrubChunk = 256 * blockSize
)

// StepInfo describes one step of an operation, for WithStepHook.
//
// The backend makes them for the hook; the zero value names no step.
type StepInfo struct {
	Op   string // "put", "restore", "delete", "get", "previous", "lock"
	Name string // the blob or lock name
	Step Step   // the step about to run
	Path string // the file the step acts on (the temp file for create temp, write, fsync, close)
}

// Option configures a Backend.
//
// A nil Option is ignored.
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
//
// The zero value is not usable: call New.
type Backend struct {
	path       string
	root       *sysDir
	sessions   *sysDir
	locks      *sysDir
	lockFiles  lockFiles // the lock files of Lock, kept open (lock.go)
	writeLocks lockFiles // the write lock files of each name, kept open the same way
	hook       func(ctx context.Context, s StepInfo) error

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
	b := &Backend{
		path:       dir,
		done:       make(chan struct{}),
		lockFiles:  lockFiles{suffix: lockExt},
		writeLocks: lockFiles{prefix: ".", suffix: writeLockExt},
	}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(b)
		}
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
	return b, nil
}

// Path returns the vault folder's path, as given to New (cleaned).
func (b *Backend) Path() string { return b.path }

func (b *Backend) closeFDs() {
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
	b.writeLocks.close()
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

// short abbreviates a version for a message.
func short(v backends.Version) string {
	s := string(v)
	if len(s) > 12 {
		s = s[:12] + "..."
	}
	return strconv.Quote(s)
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
