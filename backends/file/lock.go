package file

import (
	"context"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// Lock takes the exclusive lock called name, shared with every process
// (and every Backend in this process) that opens the same folder: an
// flock(2) on locks/NAME.lock (LockFileEx on Windows). It polls with
// LOCK_NB and a growing pause (1 ms to 25 ms) so that ctx can end the
// wait; then the error matches both ctx.Err() and backends.ErrLocked.
//
// The lock is advisory: it orders cooperating writers, and the version
// check of Put stays the fence. The kernel releases it if the process
// dies.
func (b *Backend) Lock(ctx context.Context, name string) (backends.Lock, error) {
	const op = "lock"
	if err := b.enter(ctx, op, name, true); err != nil {
		return nil, err
	}
	file := name + lockExt
	if err := b.step(ctx, op, name, StepLock, b.locks, file); err != nil {
		b.closeMu.RUnlock()
		return nil, opError(op, name, "", writeKind(err), err)
	}
	lf, err := b.locks.openLock(file)
	b.closeMu.RUnlock() // the wait below must not hold up Close
	if err != nil {
		return nil, opError(op, name, "", writeKind(err), err)
	}
	delay := lockPollMin
	for {
		ok, err := lf.tryLock()
		if err != nil {
			lf.close()
			return nil, opError(op, name, "", writeKind(err), err)
		}
		if ok {
			return &fileLock{lf: lf}, nil
		}
		if err := sleep(ctx, b.done, delay); err != nil {
			lf.close()
			if err == errClosed {
				return nil, opError(op, name, "", backends.ErrUnavailable, err)
			}
			return nil, opError(op, name, "", backends.ErrLocked, err)
		}
		delay = min(2*delay, lockPollMax)
	}
}

// fileLock is a held Lock.
type fileLock struct {
	once sync.Once
	lf   *sysLock
	err  error
}

// Unlock releases the lock and closes its file; a second Unlock is a
// no-op.
func (l *fileLock) Unlock(ctx context.Context) error {
	l.once.Do(func() {
		err := l.lf.unlock()
		if cerr := l.lf.close(); err == nil {
			err = cerr
		}
		if err != nil {
			l.err = &backends.OpError{Backend: "file", Op: "unlock", Kind: backends.ErrUnavailable, Err: err}
		}
	})
	return l.err
}
