package vault

import (
	"context"
	"reflect"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// lockSet takes named locks: through the backend when it is a
// backends.Locker (shared with other processes), else in this process
// only, shared by every Vault over the same backend value.
type lockSet struct {
	locker backends.Locker // nil: in-process only

	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
}

var (
	procLocksMu sync.Mutex
	// procLocks holds the in-process lock sets of backends that cannot
	// lock, keyed by the backend value. Entries are never removed: one
	// small map per backend value a process ever opened a vault on.
	procLocks = map[any]*lockSet{}
)

// locksFor returns the lock set for b. Vaults over the same comparable
// backend value share it; for a backend value that is not comparable, each
// Vault has its own.
func locksFor(b backends.Backend) *lockSet {
	if l, ok := b.(backends.Locker); ok {
		return &lockSet{locker: l}
	}
	if t := reflect.TypeOf(b); t == nil || !t.Comparable() {
		return &lockSet{held: map[string]chan struct{}{}}
	}
	key := any(b)
	procLocksMu.Lock()
	defer procLocksMu.Unlock()
	ls := procLocks[key]
	if ls == nil {
		ls = &lockSet{held: map[string]chan struct{}{}}
		procLocks[key] = ls
	}
	return ls
}

// lock blocks until it holds the lock called name or ctx ends.
func (ls *lockSet) lock(ctx context.Context, name string) (backends.Lock, error) {
	if ls.locker != nil {
		return ls.locker.Lock(ctx, name)
	}
	for {
		ls.mu.Lock()
		ch, busy := ls.held[name]
		if !busy {
			ch = make(chan struct{})
			ls.held[name] = ch
			ls.mu.Unlock()
			return &procLock{ls: ls, name: name, ch: ch}, nil
		}
		ls.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// procLock is a held in-process lock.
type procLock struct {
	ls   *lockSet
	name string
	ch   chan struct{}
	once sync.Once
}

// Unlock releases the lock; a second Unlock is a no-op.
func (l *procLock) Unlock(context.Context) error {
	l.once.Do(func() {
		l.ls.mu.Lock()
		delete(l.ls.held, l.name)
		l.ls.mu.Unlock()
		close(l.ch)
	})
	return nil
}
