package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Lease is a lock held in Redis for a limited time: a key set with
// SET-if-absent semantics and a TTL, holding a random 128-bit owner token.
// Only the owner can release or extend it (a script compares the token
// first), so a holder whose lease ran out cannot release or prolong the
// lease of whoever took it next.
//
// A lease is not a fence on its own: a holder paused past its TTL (GC,
// swap, a stopped VM) can wake up believing it still holds the lock. The
// fence is the blob version. Read the blob (and its version) after
// taking the lease, and write with Put(name, blob, thatVersion): the
// version counter only grows, so if someone else wrote in the meantime
// the Put fails with backends.ErrConflict instead of overwriting the newer
// session.
//
// By default a Lease extends itself every TTL/3 until Unlock (see
// WithAutoExtend), so a live holder keeps it however long its work takes,
// and a dead one loses it within one TTL. Lost reports when it is gone.
// A Lease nobody unlocks stays held, like a mutex nobody unlocks, until
// the process exits or the Backend is closed (then it lapses within one
// TTL).
//
// The zero value is not usable: Backend.Lease makes Leases.
type Lease struct {
	b     *Backend
	name  string
	key   string
	token string
	ttl   time.Duration
	auto  bool

	mu       sync.Mutex
	expires  time.Time // conservative local estimate of the server-side expiry
	released bool
	lost     bool

	lostCh chan struct{} // closed when the lease is known or presumed lost
	stop   chan struct{} // closed by Unlock
	done   chan struct{} // closed when the watcher goroutine exits
}

// Lock takes the lease called name, waiting (with jittered backoff, and
// no sooner than the holder's lease can end) until it is free or ctx ends.
// It implements backends.Locker; Lease returns the concrete type.
func (b *Backend) Lock(ctx context.Context, name string) (backends.Lock, error) {
	l, err := b.Lease(ctx, name)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Lease takes the lease called name like Lock and returns it as a *Lease,
// for Extend and Lost.
//
// While another owner holds it, Lease waits; when ctx ends first the error
// matches backends.ErrLocked and ctx.Err(). While Redis is unreachable it
// keeps trying, and when ctx ends first the error matches
// backends.ErrUnavailable and ctx.Err(). Refused credentials, and a key
// that is not a lease, fail at once.
//
// With WithReplicaAck, a lease counts as taken only once n replicas hold
// it, so that a failover cannot hand it to a second owner: one that is
// not acknowledged in time is released and Lease keeps trying.
func (b *Backend) Lease(ctx context.Context, name string) (_ *Lease, err error) {
	defer recoverPanic("lock", name, &err)
	if err := b.start(ctx, "lock", name, true); err != nil {
		return nil, err
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, opErr("lock", name, nil, err)
	}
	l := &Lease{
		b:      b,
		name:   name,
		key:    b.leasePrefix + name,
		token:  hex.EncodeToString(tok[:]),
		ttl:    b.cfg.leaseTTL,
		auto:   b.cfg.autoExtend,
		lostCh: make(chan struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	ttlms := strconv.FormatInt(l.ttl.Milliseconds(), 10)
	backoff := lockBackoffMin
	var lastErr error
	held := false
	for {
		if b.closed.Load() {
			return nil, opErr("lock", name, backends.ErrUnavailable, errClosed)
		}
		sent := time.Now()
		res, acked, waitErr, err := b.write(ctx, acquireScript, evalArgs([]string{l.key}, l.token, ttlms))
		wait, ok := res.(int64)
		if err == nil && !ok {
			return nil, opErr("lock", name, ErrCorrupt, errors.New("unexpected reply from the acquire script"))
		}
		if err == nil && wait == 0 {
			if e := b.notReplicated("lock", name, acked, waitErr); e != nil {
				// Held on the master only: give it back and try again.
				l.giveBack(ctx)
				err, wait = e, 0
			}
		}
		switch {
		case err == nil && wait == 0:
			l.expires = sent.Add(l.ttl)
			go l.watch()
			return l, nil
		case err == nil && wait < 0:
			return nil, opErr("lock", name, ErrCorrupt, errors.New("lease key has no expiry: not a lease"))
		case err == nil:
			held, lastErr = true, nil
		default:
			if !errors.Is(err, ErrNotReplicated) {
				// The script may have run and its reply been lost.
				l.giveBack(ctx)
			}
			if ctx.Err() != nil {
				if !held && lastErr == nil {
					return nil, wrap(ctx, "lock", name, err)
				}
				return nil, l.waitErr(ctx, held, lastErr)
			}
			e := err
			if !errors.Is(e, ErrNotReplicated) {
				e = wrap(ctx, "lock", name, err)
			}
			if !errors.Is(e, backends.ErrUnavailable) && !errors.Is(e, ErrNotReplicated) {
				return nil, e
			}
			held, lastErr = false, err
			wait = int64(lockBackoffMax / time.Millisecond)
		}
		// Sleep a jittered backoff, but no longer than the holder's
		// remaining TTL (plus a millisecond for the server's clock).
		d := backoff/2 + mrand.N(backoff/2+1)
		if rem := time.Duration(wait+1) * time.Millisecond; rem < d {
			d = rem
		}
		backoff = min(2*backoff, lockBackoffMax)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, l.waitErr(ctx, held, lastErr)
		case <-t.C:
		}
	}
}

// giveBack releases a lease an acquisition may have taken although Lease
// does not return it (a lost reply, a lease no replica acknowledged), so
// that it does not block the others for a whole TTL. Best effort: it only
// deletes the key if it holds this owner's token, and it is bounded by
// releaseTimeout even after ctx ended.
func (l *Lease) giveBack(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	releaseScript.Run(ctx, l.b.client, []string{l.key}, l.token)
}

// waitErr is Lock's error when ctx ends while waiting.
func (l *Lease) waitErr(ctx context.Context, held bool, lastErr error) error {
	if !held && lastErr != nil {
		return opErr("lock", l.name, backends.ErrUnavailable, fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr))
	}
	return opErr("lock", l.name, backends.ErrLocked, fmt.Errorf("held by another owner: %w", ctx.Err()))
}

// Unlock releases the lease if this owner still holds it. A second Unlock
// is a no-op. If the lease had already expired (and so may have been
// taken by someone else, whose lease Unlock leaves alone), the error
// matches ErrLeaseLost: the work done under it was not exclusive.
func (l *Lease) Unlock(ctx context.Context) (err error) {
	defer recoverPanic("unlock", l.name, &err)
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done // no extension after this point
	if l.b.closed.Load() {
		return opErr("unlock", l.name, backends.ErrUnavailable, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return opErr("unlock", l.name, nil, err)
	}
	n, err := releaseScript.Run(ctx, l.b.client, []string{l.key}, l.token).Int64()
	if err != nil {
		return wrap(ctx, "unlock", l.name, err)
	}
	if n == 0 {
		l.markLost()
		return opErr("unlock", l.name, ErrLeaseLost, nil)
	}
	return nil
}

// Extend resets the lease's TTL to its full length, if this owner still
// holds it; otherwise the error matches ErrLeaseLost. After Unlock it
// matches ErrLeaseLost too. With WithReplicaAck, an extension fewer than
// n replicas acknowledged fails with ErrNotReplicated and does not count:
// the lease is presumed to end when the last acknowledged one does.
func (l *Lease) Extend(ctx context.Context) (err error) {
	defer recoverPanic("extend", l.name, &err)
	l.mu.Lock()
	gone := l.released || l.lost
	l.mu.Unlock()
	if gone {
		return opErr("extend", l.name, ErrLeaseLost, nil)
	}
	if l.b.closed.Load() {
		return opErr("extend", l.name, backends.ErrUnavailable, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return opErr("extend", l.name, nil, err)
	}
	sent := time.Now()
	res, acked, waitErr, err := l.b.write(ctx, extendScript, evalArgs([]string{l.key}, l.token,
		strconv.FormatInt(l.ttl.Milliseconds(), 10)))
	if err != nil {
		return wrap(ctx, "extend", l.name, err)
	}
	n, ok := res.(int64)
	if !ok {
		return opErr("extend", l.name, ErrCorrupt, errors.New("unexpected reply from the extend script"))
	}
	if n == 0 {
		l.markLost()
		return opErr("extend", l.name, ErrLeaseLost, nil)
	}
	if err := l.b.notReplicated("extend", l.name, acked, waitErr); err != nil {
		return err
	}
	l.mu.Lock()
	if exp := sent.Add(l.ttl); exp.After(l.expires) {
		l.expires = exp
	}
	l.mu.Unlock()
	return nil
}

// Lost returns a channel that is closed when the lease is known to be
// lost (Extend or Unlock found another owner or none) or presumed lost
// (its TTL ran out on the local clock without a successful extension).
// Work that must be exclusive should stop when it closes; writes stay
// fenced by Put's version check either way.
func (l *Lease) Lost() <-chan struct{} { return l.lostCh }

// Name returns the lease's name.
func (l *Lease) Name() string { return l.name }

func (l *Lease) markLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost {
		l.lost = true
		close(l.lostCh)
	}
}

func (l *Lease) expiry() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// watch runs while the lease is held: it extends it every TTL/3 (with
// auto-extension on) and marks it lost when the local estimate of its
// expiry passes without a successful extension.
func (l *Lease) watch() {
	defer close(l.done)
	interval := l.ttl / 3
	retry := false
	for {
		exp := l.expiry()
		next := exp
		if l.auto {
			next = exp.Add(-l.ttl + interval) // one interval after the last extension
			if retry {
				next = time.Now().Add(min(lockBackoffMax, interval))
			}
			if next.After(exp) {
				next = exp
			}
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(l.expiry()) {
			l.markLost()
			return
		}
		if !l.auto {
			continue // Extend moved the expiry
		}
		ctx, cancel := context.WithDeadline(context.Background(), l.expiry())
		err := l.Extend(ctx)
		cancel()
		if errors.Is(err, ErrLeaseLost) {
			return
		}
		retry = err != nil
	}
}
