package file

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// A Lock on a name is two locks, taken in this order and released in the
// reverse one:
//
//   - an in-process semaphore per name, because flock(2) locks an open
//     file description, and every goroutine of this Backend uses the same
//     descriptor for a name: a second flock on it would succeed while the
//     first holder still holds it;
//   - flock(2) on locks/NAME.lock, which excludes other processes (and
//     other Backends of this process: each opens its own descriptor).
//
// The lock file's descriptor stays open between Locks (opening it costs
// two openat(2), an fstat and a close on every write, a tenth of a
// session write's overhead over a bare durable write). Before each flock
// the path is checked with one fstatat(2): a lock file removed, replaced
// or opened up to others since is opened again, and refused as it would
// have been on a first open. Descriptors of names not locked at the
// moment are kept for the maxIdleLocks most recently used names only,
// so a process that touches thousands of sessions holds a bounded number
// of descriptors.

// lockEntry is one name's open lock file, shared by every Lock of this
// Backend on that name.
type lockEntry struct {
	name string
	file string        // NAME.lock
	sem  chan struct{} // the in-process lock, capacity 1

	// lf is the open lock file, or nil until first opened. It is used
	// only by the goroutine that holds sem, or (to close it) under
	// Backend.lockMu while refs is 0.
	lf *sysLock

	// rec is, for a write lock, the name's record kept open between
	// writes (reccache.go), or nil. Used and closed like lf.
	rec *recCache

	// loc is, for a write lock, where the name's files are (computed
	// once, by the holder of sem).
	loc *location

	// Guarded by lockFiles.mu.
	refs       int        // holders and waiters
	idle       bool       // in lockFiles' idle list (refs is 0)
	prev, next *lockEntry // neighbours in that list, most recently used first
}

// lockFiles is the Backend's cache of lock entries: one for the locks of
// Lock (locks/NAME.lock), one for the write locks every write of a name
// takes (locks/.NAME.wlock).
type lockFiles struct {
	prefix, suffix string // the lock file of name is prefix + name + suffix

	mu     sync.Mutex
	byName map[string]*lockEntry
	// The entries with refs 0, most recently used first, linked through
	// their prev and next (a list in the entries themselves, so that
	// making one idle allocates nothing).
	head, tail *lockEntry
	idleLen    int
	closed     bool // set by Close: entries are closed when their refs drop to 0
}

// pushIdle puts e, not idle, at the front of the idle list. c.mu must be
// held.
func (c *lockFiles) pushIdle(e *lockEntry) {
	e.idle, e.prev, e.next = true, nil, c.head
	if c.head != nil {
		c.head.prev = e
	} else {
		c.tail = e
	}
	c.head = e
	c.idleLen++
}

// removeIdle takes e, idle, out of the idle list. c.mu must be held.
func (c *lockFiles) removeIdle(e *lockEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.idle, e.prev, e.next = false, nil, nil
	c.idleLen--
}

// get returns the entry for name with one more reference.
func (c *lockFiles) get(name string) *lockEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]*lockEntry{}
	}
	e := c.byName[name]
	if e == nil {
		e = &lockEntry{name: name, file: c.prefix + name + c.suffix, sem: make(chan struct{}, 1)}
		c.byName[name] = e
	}
	if e.idle {
		c.removeIdle(e)
	}
	e.refs++
	return e
}

// put drops a reference to e. The last one makes e idle, closing the
// least recently used idle entries beyond maxIdleLocks (or e itself, once
// the Backend is closed or if its file is not open).
func (c *lockFiles) put(e *lockEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs > 0 {
		return
	}
	if c.closed || e.lf == nil {
		c.drop(e)
		return
	}
	c.pushIdle(e)
	for c.idleLen > maxIdleLocks {
		c.drop(c.tail)
	}
}

// drop closes an entry with no references and forgets it. c.mu must be
// held.
func (c *lockFiles) drop(e *lockEntry) {
	if e.idle {
		c.removeIdle(e)
	}
	if e.lf != nil {
		e.lf.close()
		e.lf = nil
	}
	e.dropRecord()
	delete(c.byName, e.name)
}

// close closes every idle entry; entries in use are closed by their last
// put.
func (c *lockFiles) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for c.head != nil {
		c.drop(c.head)
	}
}

// open returns the number of lock files the cache holds open, for tests.
func (c *lockFiles) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.byName {
		if e.lf != nil {
			n++
		}
	}
	return n
}

// Lock takes the exclusive lock called name, shared with every process
// (and every Backend in this process) that opens the same folder: an
// flock(2) on locks/NAME.lock (LockFileEx on Windows), plus a lock inside
// the process, since the Backend keeps one descriptor per name for all
// its goroutines. Waiters in this process are woken as soon as the holder
// unlocks; a lock held by another process is polled with LOCK_NB and a
// growing pause (1 ms to 25 ms). If ctx ends first, the error matches
// both ctx.Err() and backends.ErrLocked.
//
// The lock is advisory: it orders cooperating writers, and the version
// check of Put stays the fence. The kernel releases it if the process
// dies.
func (b *Backend) Lock(ctx context.Context, name string) (backends.Lock, error) {
	const op = "lock"
	if err := b.enter(ctx, op, name, true); err != nil {
		return nil, err
	}
	if err := b.step(ctx, op, name, StepLock, b.locks, name+lockExt); err != nil {
		b.closeMu.RUnlock()
		return nil, opError(op, name, "", writeKind(err), err)
	}
	b.closeMu.RUnlock() // the waits below must not hold up Close
	e, kind, err := b.acquire(ctx, &b.lockFiles, name, false, lockPollMin, lockPollMax)
	if err != nil {
		return nil, opError(op, name, "", kind, err)
	}
	return &fileLock{files: &b.lockFiles, e: e}, nil
}

// acquire takes the lock of name in files: the in-process semaphore,
// then flock(2) on its lock file, polled from pollMin to pollMax. On
// failure it returns the error's category with it. With held, the caller
// holds b.closeMu shared (a write in progress); otherwise it must not hold
// it (a Lock, whose waits must not hold up Close).
//
// The entry returned is held (its sem taken, its lock file flocked):
// release it with files.release.
func (b *Backend) acquire(ctx context.Context, files *lockFiles, name string, held bool, pollMin, pollMax time.Duration) (*lockEntry, error, error) {
	e := files.get(name)

	// 1. The in-process lock: taken at once when free (no select over
	// the three channels), else waited for.
	select {
	case e.sem <- struct{}{}:
	default:
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			files.put(e)
			return nil, backends.ErrLocked, ctx.Err()
		case <-b.done:
			files.put(e)
			return nil, backends.ErrUnavailable, errClosed
		}
	}
	fail := func(kind, err error) (*lockEntry, error, error) {
		<-e.sem
		files.put(e)
		return nil, kind, err
	}

	// 2. The lock file, (re)opened if it is not the checked file at
	// its path. Holding sem, this goroutine alone uses e.lf.
	if err := b.openLockFile(e, held); err != nil {
		return fail(writeKind(err), err)
	}

	// 3. flock(2), polled.
	delay := pollMin
	for {
		ok, err := e.lf.tryLock()
		if err != nil {
			e.lf.close()
			e.lf = nil
			return fail(writeKind(err), err)
		}
		if ok {
			// The lock counts only if the path still names the file
			// locked: one removed or replaced between its open and
			// the flock (locks/ cleaned by hand, a tmpfiles rule)
			// would let another process lock a new file at the path
			// while this one holds the old. Checked after the flock,
			// so that no replacement can slip in between.
			if b.locks.sameLock(e.lf, e.file) {
				return e, nil, nil
			}
			_ = e.lf.unlock()
			e.lf.close()
			e.lf = nil
			if err := b.openLockFile(e, held); err != nil {
				return fail(writeKind(err), err)
			}
			continue
		}
		if err := sleep(ctx, b.done, delay); err != nil {
			if err == errClosed {
				return fail(backends.ErrUnavailable, err)
			}
			return fail(backends.ErrLocked, err)
		}
		delay = min(2*delay, pollMax)
	}
}

// openLockFile makes e.lf the checked lock file at e.file when it has
// none; acquire checks, once it holds the flock, that the path still
// names that file, and opens it again here if not (see acquire for
// held). The caller holds e.sem.
func (b *Backend) openLockFile(e *lockEntry, held bool) error {
	if !held {
		b.closeMu.RLock()
		defer b.closeMu.RUnlock()
		if b.closed {
			return errClosed
		}
	}
	if e.lf == nil {
		lf, err := b.locks.openLock(e.file)
		if err != nil {
			return err
		}
		e.lf = lf
	}
	return nil
}

// fileLock is a held Lock.
type fileLock struct {
	once  sync.Once
	files *lockFiles
	e     *lockEntry
	err   error
}

// Unlock releases the lock; a second Unlock is a no-op. The lock file
// stays open for the next Lock of the name (see maxIdleLocks), unless
// the Backend was closed meanwhile.
func (l *fileLock) Unlock(ctx context.Context) error {
	l.once.Do(func() { l.err = l.files.release(l.e) })
	return l.err
}

// release unlocks e, which acquire returned: the flock, then the
// in-process lock, then the reference.
func (c *lockFiles) release(e *lockEntry) error {
	var err error
	if uerr := e.lf.unlock(); uerr != nil {
		// Closing the descriptor releases the lock whatever state it
		// is in; only if that fails too is the lock possibly still
		// held.
		if cerr := e.lf.close(); cerr != nil {
			err = &backends.OpError{Backend: "file", Op: "unlock", Kind: backends.ErrUnavailable, Err: errors.Join(uerr, cerr)}
		}
		e.lf = nil
	}
	<-e.sem
	c.put(e)
	return err
}
