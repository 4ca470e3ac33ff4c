// Package memory is an in-process backends.Backend: thread-safe, with
// versions, a previous generation per blob (backends.Recoverer), an
// in-process backends.Locker, and fault-injection hooks for the tests of
// other packages (fail the next N calls of an operation, delay calls, run
// a function before or after each call).
//
// Nothing is persisted: the blobs live as long as the Backend. It is meant
// for tests and for ephemeral vaults.
package memory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Op names an operation of the Backend, for fault injection.
type Op string

// The operations that FailNext, SetDelay, Before and After apply to.
const (
	OpGet      Op = "get"
	OpPut      Op = "put"
	OpDelete   Op = "delete"
	OpList     Op = "list"
	OpLock     Op = "lock"
	OpUnlock   Op = "unlock"
	OpPrevious Op = "previous"
	OpRestore  Op = "restore"
	OpDrop     Op = "drop previous"
)

// Option configures a Backend.
//
// A nil Option is ignored.
type Option func(*Backend)

// WithMaxBlobSize makes the backend refuse blobs larger than n bytes with
// backends.ErrTooLarge, to stand in for a backend with a small limit (a
// keychain). n is capped at backends.MaxBlobSize.
func WithMaxBlobSize(n int) Option {
	return func(b *Backend) {
		if n > 0 && n < backends.MaxBlobSize {
			b.maxBlob = n
		}
	}
}

// Backend is an in-memory backends.Backend, backends.Locker and
// backends.Recoverer. The zero value is not usable; call New.
type Backend struct {
	maxBlob int

	mu     sync.Mutex
	blobs  map[string]*entry
	seq    uint64 // last version number handed out; versions never repeat
	closed bool
	faults map[Op]*fault
	locks  map[string]chan struct{} // held locks: closed when released
}

type entry struct {
	blob    []byte
	v       backends.Version
	prev    []byte // nil: no previous generation
	prevV   backends.Version
	hasPrev bool
}

type fault struct {
	failN  int
	failE  error
	delay  time.Duration
	before func(ctx context.Context, name string) error
	after  func(ctx context.Context, name string, err error)
}

// New returns an empty Backend.
func New(opts ...Option) *Backend {
	b := &Backend{
		maxBlob: backends.MaxBlobSize,
		blobs:   make(map[string]*entry),
		faults:  make(map[Op]*fault),
		locks:   make(map[string]chan struct{}),
	}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(b)
		}
	}
	return b
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Locker    = (*Backend)(nil)
	_ backends.Recoverer = (*Backend)(nil)
)

func (b *Backend) fault(op Op) *fault {
	f := b.faults[op]
	if f == nil {
		f = new(fault)
		b.faults[op] = f
	}
	return f
}

// FailNext makes the next n calls of op fail with err (wrapped in a
// *backends.OpError, so errors.Is(err, yourErr) holds) without touching
// the store. n <= 0 cancels a pending failure. Calls refused earlier (a
// bad name, a cancelled context) do not count.
func (b *Backend) FailNext(op Op, n int, err error) {
	if n > 0 && err == nil {
		panic("memory: FailNext with a nil error")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.fault(op)
	f.failN, f.failE = max(n, 0), err
}

// SetDelay makes every later call of op wait d before it runs (or until
// its context ends, which fails the call with the context's error).
// Zero removes the delay.
func (b *Backend) SetDelay(op Op, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fault(op).delay = d
}

// Before registers fn to run at the start of every call of op, after the
// name and context checks and the delay, before the store is touched
// (and outside the backend's mutex, so fn may block or call the backend).
// A non-nil error from fn fails the call with it (wrapped), changing
// nothing. name is "" for OpList. A nil fn removes the hook.
func (b *Backend) Before(op Op, fn func(ctx context.Context, name string) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fault(op).before = fn
}

// After registers fn to run at the end of every call of op that got past
// the Before hook, with the call's error (nil when it succeeded); for a
// Put that returned nil the blob is already stored. fn runs outside the
// backend's mutex. A nil fn removes the hook.
func (b *Backend) After(op Op, fn func(ctx context.Context, name string, err error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fault(op).after = fn
}

func opErr(op Op, name string, kind, err error) error {
	return &backends.OpError{Backend: "memory", Op: string(op), Name: name, Kind: kind, Err: err}
}

// begin runs the checks and faults common to every call. On success it
// returns the After hook to run (possibly nil).
func (b *Backend) begin(ctx context.Context, op Op, name string, checkName bool) (func(context.Context, string, error), error) {
	if checkName {
		if err := backends.ValidateName(name); err != nil {
			return nil, opErr(op, name, backends.ErrInvalidName, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(op, name, nil, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, opErr(op, name, backends.ErrUnavailable, errClosed)
	}
	f := b.faults[op]
	var (
		delay  time.Duration
		failE  error
		before func(context.Context, string) error
		after  func(context.Context, string, error)
	)
	if f != nil {
		delay, before, after = f.delay, f.before, f.after
		if f.failN > 0 {
			f.failN--
			failE = f.failE
		}
	}
	b.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, opErr(op, name, nil, ctx.Err())
		}
	}
	if failE != nil {
		err := opErr(op, name, nil, failE)
		if after != nil {
			after(ctx, name, err)
		}
		return nil, err
	}
	if before != nil {
		if err := before(ctx, name); err != nil {
			err = opErr(op, name, nil, err)
			if after != nil {
				after(ctx, name, err)
			}
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(op, name, nil, err)
	}
	return after, nil
}

var errClosed = fmt.Errorf("memory: backend closed")

func runAfter(after func(context.Context, string, error), ctx context.Context, name string, err error) {
	if after != nil {
		after(ctx, name, err)
	}
}

func (b *Backend) nextVersion() backends.Version {
	b.seq++
	return backends.Version("m" + strconv.FormatUint(b.seq, 10))
}

// Get returns a copy of the blob stored under name and its version.
func (b *Backend) Get(ctx context.Context, name string) (blob []byte, v backends.Version, err error) {
	after, err := b.begin(ctx, OpGet, name, true)
	if err != nil {
		return nil, "", err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.blobs[name]
	if e == nil {
		return nil, "", opErr(OpGet, name, backends.ErrNotFound, nil)
	}
	return slices.Clone(e.blob), e.v, nil
}

// Put stores a copy of blob under name if the stored version is ifVersion.
func (b *Backend) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (v backends.Version, err error) {
	if len(blob) > b.maxBlob {
		if err := backends.ValidateName(name); err != nil {
			return "", opErr(OpPut, name, backends.ErrInvalidName, err)
		}
		return "", opErr(OpPut, name, backends.ErrTooLarge, fmt.Errorf("%d bytes, limit %d", len(blob), b.maxBlob))
	}
	after, err := b.begin(ctx, OpPut, name, true)
	if err != nil {
		return "", err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.putLocked(name, slices.Clone(blob), ifVersion, OpPut)
}

func (b *Backend) putLocked(name string, blob []byte, ifVersion backends.Version, op Op) (backends.Version, error) {
	if blob == nil {
		blob = []byte{}
	}
	e := b.blobs[name]
	if err := check(e, ifVersion); err != nil {
		return "", opErr(op, name, backends.ErrConflict, err)
	}
	v := b.nextVersion()
	if e == nil {
		b.blobs[name] = &entry{blob: blob, v: v}
		return v, nil
	}
	e.prev, e.prevV, e.hasPrev = e.blob, e.v, true
	e.blob, e.v = blob, v
	return v, nil
}

// check compares the stored entry with ifVersion.
func check(e *entry, ifVersion backends.Version) error {
	switch {
	case ifVersion == backends.Any:
		return nil
	case ifVersion == backends.Absent:
		if e != nil {
			return fmt.Errorf("exists (version %s)", e.v)
		}
	case e == nil:
		return fmt.Errorf("does not exist (want version %q)", ifVersion)
	case e.v != ifVersion:
		return fmt.Errorf("version %s, want %q", e.v, ifVersion)
	}
	return nil
}

// Delete removes name, and its previous generation, if its version is
// ifVersion.
func (b *Backend) Delete(ctx context.Context, name string, ifVersion backends.Version) (err error) {
	after, err := b.begin(ctx, OpDelete, name, true)
	if err != nil {
		return err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.blobs[name]
	if e == nil {
		return opErr(OpDelete, name, backends.ErrNotFound, nil)
	}
	if err := check(e, ifVersion); err != nil {
		return opErr(OpDelete, name, backends.ErrConflict, err)
	}
	delete(b.blobs, name)
	return nil
}

// List returns the stored names except backends.HeaderName, sorted.
func (b *Backend) List(ctx context.Context) (names []string, err error) {
	after, err := b.begin(ctx, OpList, "", false)
	if err != nil {
		return nil, err
	}
	defer func() { runAfter(after, ctx, "", err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	names = make([]string, 0, len(b.blobs))
	for n := range b.blobs {
		if n != backends.HeaderName {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Previous returns a copy of the previous generation of name.
func (b *Backend) Previous(ctx context.Context, name string) (blob []byte, v backends.Version, err error) {
	after, err := b.begin(ctx, OpPrevious, name, true)
	if err != nil {
		return nil, "", err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.blobs[name]
	if e == nil || !e.hasPrev {
		return nil, "", opErr(OpPrevious, name, backends.ErrNotFound, fmt.Errorf("no previous generation"))
	}
	return slices.Clone(e.prev), e.prevV, nil
}

// Restore makes the previous generation of name current again.
func (b *Backend) Restore(ctx context.Context, name string, ifVersion backends.Version) (v backends.Version, err error) {
	after, err := b.begin(ctx, OpRestore, name, true)
	if err != nil {
		return "", err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.blobs[name]
	if e == nil || !e.hasPrev {
		return "", opErr(OpRestore, name, backends.ErrNotFound, fmt.Errorf("no previous generation"))
	}
	return b.putLocked(name, e.prev, ifVersion, OpRestore)
}

// DropPrevious forgets the previous generation of name
// (backends.Recoverer). The memory backend keeps no other copies.
func (b *Backend) DropPrevious(ctx context.Context, name string) (err error) {
	after, err := b.begin(ctx, OpDrop, name, true)
	if err != nil {
		return err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.blobs[name]; e != nil {
		clear(e.prev)
		e.prev, e.prevV, e.hasPrev = nil, "", false
	}
	return nil
}

// Lock takes the in-process lock called name, waiting until it is free
// or ctx ends (then the error matches both ctx.Err() and
// backends.ErrLocked).
func (b *Backend) Lock(ctx context.Context, name string) (l backends.Lock, err error) {
	after, err := b.begin(ctx, OpLock, name, true)
	if err != nil {
		return nil, err
	}
	defer func() { runAfter(after, ctx, name, err) }()
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, opErr(OpLock, name, backends.ErrUnavailable, errClosed)
		}
		held, ok := b.locks[name]
		if !ok {
			ch := make(chan struct{})
			b.locks[name] = ch
			b.mu.Unlock()
			return &lock{b: b, name: name, ch: ch}, nil
		}
		b.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, opErr(OpLock, name, backends.ErrLocked, ctx.Err())
		}
	}
}

type lock struct {
	b    *Backend
	name string
	once sync.Once
	ch   chan struct{}
}

// Unlock releases the lock; a second Unlock is a no-op.
func (l *lock) Unlock(ctx context.Context) error {
	l.once.Do(func() {
		l.b.mu.Lock()
		if l.b.locks[l.name] == l.ch {
			delete(l.b.locks, l.name)
		}
		l.b.mu.Unlock()
		close(l.ch)
	})
	return nil
}

// Close drops every blob; later calls fail with backends.ErrUnavailable.
// Held locks stay held until unlocked.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.blobs = nil
	return nil
}
