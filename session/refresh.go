package session

import (
	"context"
	"errors"
	"strconv"

	"github.com/sessionvault/sessionvault/backends"
)

// RefreshError reports a failed refresh. It wraps the RefreshFunc's error;
// when the server refused the refresh token (ErrUnauthorized) and the
// session was dropped, it also matches ErrNotAuthenticated.
type RefreshError struct {
	Err     error
	Dropped bool // the rejected session was wiped and its stored copy deleted
}

func (e *RefreshError) Error() string {
	msg := "session: refresh failed: " + e.Err.Error()
	if e.Dropped {
		msg += " (refresh token rejected; session cleared)"
	}
	return msg
}

func (e *RefreshError) Unwrap() []error {
	if e.Dropped {
		return []error{e.Err, ErrNotAuthenticated}
	}
	return []error{e.Err}
}

// refreshingKey marks the context handed to a RefreshFunc, so that a
// Transport of the same Manager does not try to refresh (or take the
// Manager's write lock) from inside the refresh.
type refreshingKey struct{}

func isRefreshing(ctx context.Context, m *Manager) bool {
	v, _ := ctx.Value(refreshingKey{}).(*Manager)
	return v == m
}

// Refresh gets new tokens through the RefreshFunc (WithRefresher), so that
// the Manager holds tokens newer than those it held when called. Only one
// refresh of a session runs at a time, however many goroutines and
// processes ask:
//
//  1. In this process, concurrent calls share one refresh (singleflight).
//  2. The refresh takes the store's lock (a file lock on one machine, a
//     lease on a distributed backend), so other processes wait.
//  3. Under the lock it re-reads the stored session. If another process
//     already refreshed (the stored access token differs from the one this
//     Manager held and does not need a refresh), it uses those tokens and
//     calls nothing.
//  4. Otherwise it calls the RefreshFunc with the stored refresh token and
//     writes the new tokens with the version check, still under the lock.
//
// A refresh is written even without auto-save: a rotated refresh token
// that is not stored logs every other process out. Tokens the stored form
// cannot hold (see ErrTooLarge) fail the refresh with a *RefreshError
// wrapping the reason, and are not used; cookies returned with the tokens
// that do not fit are left out. If the write fails the
// error matches ErrNotSaved and the new tokens are in use in memory (the
// next write retries). If the RefreshFunc reports ErrUnauthorized, the
// session it refreshed is wiped and its stored copy deleted, unless
// another writer stored a newer one meanwhile, which is then kept and
// used.
//
// ctx bounds the caller's wait. The refresh itself runs on behalf of every
// caller that joined it, bounded by WithRefreshTimeout.
func (m *Manager) Refresh(ctx context.Context) error {
	gen, _, err := m.tokenState()
	if err != nil {
		return err
	}
	return m.refreshFrom(ctx, gen, true)
}

// RefreshIfNeeded refreshes as Refresh does, but only if the tokens need a
// refresh (TokensNeedRefresh), checked again under the store lock: of many
// goroutines or processes that find the tokens stale at once, one
// refreshes and the others use its tokens.
func (m *Manager) RefreshIfNeeded(ctx context.Context) error {
	gen, needs, err := m.tokenState()
	if err != nil || !needs {
		return err
	}
	return m.refreshFrom(ctx, gen, false)
}

// tokenState returns the token generation and whether those tokens need a
// refresh, read together.
func (m *Manager) tokenState() (gen uint64, needsRefresh bool, err error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return 0, false, ErrNotAuthenticated
	}
	return m.tokenGen, m.sess.Tokens.NeedsRefresh(now), nil
}

// refreshFrom runs one shared refresh. Tokens are identified by their
// generation (a counter of access-token changes), not by a copy of the
// token, which would be one more buffer to wipe. With force, it refreshes
// unless the tokens changed since generation seen and are fresh (the
// caller saw seen rejected); without, unless the tokens are fresh.
func (m *Manager) refreshFrom(ctx context.Context, seen uint64, force bool) error {
	if m.cfg.refresher == nil {
		return ErrNoRefresher
	}
	if isRefreshing(ctx, m) {
		return errors.New("session: Refresh called from inside the RefreshFunc")
	}
	key := "if-needed"
	if force {
		key = "force:" + strconv.FormatUint(seen, 10)
	}
	ch := m.refreshes.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.refreshWait)
		defer cancel()
		return nil, m.refreshOnce(rctx, seen, force)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) refreshOnce(ctx context.Context, seen uint64, force bool) error {
	m.ioMu.Lock()
	defer m.ioMu.Unlock()
	if m.isClosing() {
		return ErrClosed
	}
	lk, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer m.unlock(ctx, lk)

	theirs, v, err := m.read(ctx)
	if err != nil && !errors.Is(err, ErrNoSession) {
		return err
	}
	m.mu.Lock()
	switch {
	case theirs != nil:
		m.adoptLocked(theirs, v)
	case m.sess == nil:
		m.mu.Unlock()
		return ErrNotAuthenticated
	case m.version != backends.Absent:
		// It was stored and is gone: logged out elsewhere.
		m.wipeLocked()
		m.mu.Unlock()
		return errDeletedElsewhere
	}
	cur := m.sess
	if (!force || m.tokenGen != seen) && !cur.Tokens.NeedsRefresh(m.now()) {
		// Another process refreshed while we waited for the lock.
		m.mu.Unlock()
		m.cfg.logger.Debug("session: using tokens refreshed by another writer", "session", m.store.Name())
		return nil
	}
	if cur.Tokens.RefreshToken.IsEmpty() {
		m.mu.Unlock()
		return ErrTokenNotFound
	}
	rt := cur.Tokens.RefreshToken.Clone()
	base := m.version
	m.mu.Unlock()

	tokens, cookies, err := m.cfg.refresher(context.WithValue(ctx, refreshingKey{}, m), rt)
	rt.Destroy()
	if err == nil && tokens.AccessToken.IsEmpty() {
		err = errors.New("session: RefreshFunc returned an empty access token")
	}
	if err != nil {
		tokens.Destroy()
		cookies.Destroy()
		if errors.Is(err, ErrUnauthorized) {
			return m.dropRejected(ctx, base, err)
		}
		return &RefreshError{Err: err}
	}

	now := m.now()
	m.mu.Lock()
	if m.sess == nil {
		m.mu.Unlock()
		tokens.Destroy()
		cookies.Destroy()
		return ErrNotAuthenticated
	}
	// What the stored form cannot hold is refused before it is used:
	// tokens that do not fit fail the refresh; cookies that do not fit
	// are left out, and the tokens are kept.
	view := *m.sess
	view.Tokens = tokens
	view.Metadata.LastRefreshedAt = &now
	if _, err := fits(&view); err != nil {
		m.mu.Unlock()
		tokens.Destroy()
		cookies.Destroy()
		return &RefreshError{Err: err}
	}
	if cookies != nil {
		view.Cookies = m.sess.Cookies.mergedView(*cookies)
		if _, err := fits(&view); err != nil {
			m.cfg.logger.Warn("session: cookies of a refresh not kept", "session", m.store.Name(), "err", err)
			cookies.Destroy()
			cookies = nil
		}
	}
	setTokens(m.sess, tokens, now)
	m.tokenGen++
	m.changedLocked()
	m.pend.tokens = true
	if cookies != nil {
		if m.sess.Cookies.Merge(*cookies) {
			if m.pend.cookies == nil {
				m.pend.cookies = &AuthCookies{}
			}
			m.pend.cookies.mergeDelta(*cookies)
		}
		cookies.Destroy()
	}
	m.mu.Unlock()
	m.cfg.logger.Info("session: tokens refreshed", "session", m.store.Name())
	if err := m.writeLocked(ctx, true); err != nil {
		return &NotSavedError{Op: "refresh", Err: err}
	}
	return nil
}

// dropRejected handles a refresh token the server refused: the session
// stored at base is dead, so it is deleted, but only if it is still the
// stored version; a newer session written meanwhile is kept and used.
// Called with ioMu and the store lock held.
func (m *Manager) dropRejected(ctx context.Context, base backends.Version, cause error) error {
	if base != backends.Absent {
		err := m.store.Delete(ctx, base)
		switch {
		case err == nil || errors.Is(err, backends.ErrNotFound):
		case errors.Is(err, backends.ErrConflict):
			theirs, v, rerr := m.read(ctx)
			if rerr == nil {
				m.mu.Lock()
				m.adoptLocked(theirs, v)
				m.mu.Unlock()
			}
			return &RefreshError{Err: cause}
		default:
			m.cfg.logger.Error("session: could not delete a rejected session", "session", m.store.Name(), "err", err)
		}
	}
	m.mu.Lock()
	m.wipeLocked()
	m.mu.Unlock()
	return &RefreshError{Err: cause, Dropped: true}
}
