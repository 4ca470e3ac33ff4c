package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// RefreshError reports a failed refresh. It wraps the RefreshFunc's error.
// When the server refused the refresh token (ErrUnauthorized) it also
// matches ErrReauthRequired, and, when the session was dropped,
// ErrNotAuthenticated. After a transient failure, refreshes back off: a
// refresh asked for before RetryAt does not call the server and returns a
// RefreshError with the last failure and Backoff set.
//
// A zero RefreshError is not a meaningful error: the package makes them.
type RefreshError struct {
	Err     error
	Dropped bool // the rejected session was wiped and its stored copy deleted
	// Superseded: the refused refresh token belonged to a session another
	// writer had replaced meanwhile; the newer one is in use, and no
	// re-authentication is required.
	Superseded bool
	Backoff    bool      // no attempt was made: an earlier one failed and RetryAt is not reached
	RetryAt    time.Time // after a transient failure: when the next attempt may run (Manager clock)
}

func (e *RefreshError) Error() string {
	msg := "session: refresh failed: " + e.Err.Error()
	if e.Dropped {
		msg += " (refresh token rejected; session cleared)"
	}
	if e.Backoff {
		msg += " (backing off; next attempt at " + e.RetryAt.UTC().Format(time.RFC3339Nano) + ")"
	}
	return msg
}

func (e *RefreshError) Unwrap() []error {
	errs := []error{e.Err}
	if errors.Is(e.Err, ErrUnauthorized) && !e.Superseded {
		errs = append(errs, ErrReauthRequired)
	}
	if e.Dropped {
		errs = append(errs, ErrNotAuthenticated)
	}
	return errs
}

// backoff is the state of failed refreshes; guarded by Manager.mu.
type backoff struct {
	failures int       // transient failures in a row
	retryAt  time.Time // no attempt before this (Manager clock)
	last     error     // the last failure
}

// refreshBackoffDelay draws the pause after the n-th failure in a row
// (n >= 1): uniform in [d/2, d), d = refreshBackoffMin * 2^(n-1) capped at
// refreshBackoffMax (see limits.go).
func refreshBackoffDelay(n int) time.Duration {
	d := refreshBackoffMax
	if n < 20 {
		d = min(refreshBackoffMax, refreshBackoffMin<<(n-1))
	}
	return d/2 + rand.N(d/2)
}

// backoffErrLocked returns the error of a refresh asked for during the
// backoff, or nil when an attempt may run. Called with mu held.
func (m *Manager) backoffErrLocked(now time.Time) error {
	b := &m.backoff
	if b.failures == 0 || !now.Before(b.retryAt) {
		return nil
	}
	return &RefreshError{Err: b.last, Backoff: true, RetryAt: b.retryAt}
}

// noteRefresh records the outcome of an attempt that called the server (or
// found tokens another writer refreshed) for the backoff.
func (m *Manager) noteRefresh(err error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var re *RefreshError
	switch {
	case err == nil || errors.Is(err, ErrNotSaved):
		m.backoff = backoff{}
	case errors.As(err, &re) && !re.Backoff && !errors.Is(err, ErrUnauthorized):
		b := &m.backoff
		b.failures++
		b.retryAt = now.Add(refreshBackoffDelay(b.failures))
		b.last = re.Err
		re.RetryAt = b.retryAt
	case errors.Is(err, ErrReauthRequired):
		m.backoff = backoff{}
		m.reauth = true
	}
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
//     Manager held and is not due for a refresh), it uses those tokens and
//     calls nothing.
//  4. Otherwise it calls the RefreshFunc with the stored refresh token and
//     writes the new tokens with the version check, still under the lock.
//
// A refresh is written even without auto-save: a rotated refresh token
// that is not stored logs every other process out. Tokens the stored form
// cannot hold (see ErrTooLarge) fail the refresh with a *RefreshError
// wrapping the reason, and are not used; cookies returned with the tokens
// that do not fit are left out. If the write fails the error matches
// ErrNotSaved and the new tokens are in use in memory (the next write
// retries).
//
// If the RefreshFunc reports ErrUnauthorized (the server refused the
// refresh token), the error matches ErrReauthRequired: the user must log
// in again. The session it refreshed is wiped and its stored copy deleted,
// unless another writer stored a newer one meanwhile, which is then kept
// and used. Any other failure is transient: the Manager backs off
// (exponentially, with jitter, from one second up to five minutes; see
// limits.go), and a Refresh asked for before the next attempt is due
// returns at once with a *RefreshError whose Backoff is set, without
// calling the server.
//
// Refresh always asks for new tokens; RefreshIfNeeded asks only when they
// are due, and is what a loop should call.
//
// ctx bounds the caller's wait. The refresh itself runs on behalf of every
// caller that joined it, bounded by WithRefreshTimeout; Close ends its
// wait for the store lock, but waits for a RefreshFunc call under way, so
// that tokens the server rotated are stored.
func (m *Manager) Refresh(ctx context.Context) error {
	gen, _, err := m.tokenState()
	if err != nil {
		return err
	}
	return m.refreshFrom(ctx, gen, true)
}

// RefreshIfNeeded refreshes as Refresh does, but only if the tokens are
// due for a refresh (NeedsRefresh), checked again under the store lock: of
// many goroutines or processes that find the tokens due at once, one
// refreshes and the others use its tokens. It returns nil at once when the
// tokens are not due, so calling it before every use of the tokens costs
// a mutex.
func (m *Manager) RefreshIfNeeded(ctx context.Context) error {
	gen, needs, err := m.tokenState()
	if err != nil || !needs {
		return err
	}
	return m.refreshFrom(ctx, gen, false)
}

// tokenState returns the token generation and whether those tokens are
// due for a refresh, read together.
func (m *Manager) tokenState() (gen uint64, due bool, err error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		if m.reauth {
			return 0, false, errReauth
		}
		return 0, false, ErrNotAuthenticated
	}
	return m.tokenGen, m.cfg.win.due(m.sess, now), nil
}

// errReauth is returned for a session dropped because its refresh token
// was refused, until a new session is created.
var errReauth = &reauthError{}

type reauthError struct{}

func (*reauthError) Error() string {
	return "session: re-authentication required: the refresh token was rejected and the session cleared"
}
func (*reauthError) Unwrap() []error { return []error{ErrReauthRequired, ErrNotAuthenticated} }

// refreshFrom runs one shared refresh. Tokens are identified by their
// generation (a counter of access-token changes), not by a copy of the
// token, which would be one more buffer to wipe. With force, it refreshes
// unless the tokens changed since generation seen and are not due (the
// caller saw seen rejected); without, unless the tokens are not due.
// During a backoff it returns the backoff's error without attempting.
func (m *Manager) refreshFrom(ctx context.Context, seen uint64, force bool) error {
	if m.cfg.refresher == nil {
		return ErrNoRefresher
	}
	if isRefreshing(ctx, m) {
		return errors.New("session: Refresh called from inside the RefreshFunc")
	}
	now := m.now()
	m.mu.Lock()
	berr := m.backoffErrLocked(now)
	m.mu.Unlock()
	if berr != nil {
		return berr
	}
	key := "if-needed"
	if force {
		key = "force:" + strconv.FormatUint(seen, 10)
	}
	ch := m.refreshes.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.refreshWait)
		defer cancel()
		err := m.refreshOnce(rctx, seen, force)
		m.noteRefresh(err)
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heldBack reports whether err is a refresh the backoff held back.
func heldBack(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && re.Backoff
}

// ready makes sure the tokens can be used now, for a Transport or a
// TokenSource. Tokens that are not due for a refresh are used as they
// are. Tokens due but not expired are used too, while one refresh runs in
// the background (refresh-ahead): nothing waits for it. Only expired
// tokens wait for a refresh; if it fails, ready fails: with an error
// matching ErrReauthRequired when the server refused the refresh token,
// else matching ErrTokenExpired. report gets what cannot be returned (a
// background failure, new tokens not saved) and a refusal, once per
// refresh attempt: never a refresh the backoff held back.
func (m *Manager) ready(ctx context.Context, report func(error)) error {
	quiet := func(err error) {
		if !heldBack(err) {
			report(err)
		}
	}
	now := m.now()
	m.mu.Lock()
	if m.sess == nil {
		reauth := m.reauth
		m.mu.Unlock()
		if reauth {
			return errReauth
		}
		return ErrNotAuthenticated
	}
	gen := m.tokenGen
	due := m.cfg.win.due(m.sess, now)
	expired := m.cfg.win.expired(m.sess, now)
	m.mu.Unlock()
	if m.cfg.refresher == nil || isRefreshing(ctx, m) {
		return nil // the server decides
	}
	switch {
	case !due && !expired:
		return nil
	case !expired:
		m.refreshAhead(ctx, quiet)
		return nil
	}
	err := m.refreshFrom(ctx, gen, false)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotSaved):
		report(err) // new tokens in use, just not stored
		return nil
	case errors.Is(err, ErrReauthRequired):
		report(err)
		return err
	case !m.HasSession():
		return err
	case m.TokensExpired():
		return &expiredError{err}
	}
	quiet(err) // another writer's tokens arrived meanwhile
	return nil
}

// expiredError reports tokens that expired and could not be refreshed.
type expiredError struct{ err error }

func (e *expiredError) Error() string   { return "session: token expired: " + e.err.Error() }
func (e *expiredError) Unwrap() []error { return []error{ErrTokenExpired, e.err} }

// refreshAhead starts a refresh in the background when none runs and no
// backoff holds, and returns at once: requests keep using the current
// tokens, which are due for a refresh but not expired. report gets the
// refresh's error, if any (one per attempt).
func (m *Manager) refreshAhead(ctx context.Context, report func(error)) {
	if m.cfg.refresher == nil || isRefreshing(ctx, m) {
		return
	}
	now := m.now()
	m.mu.Lock()
	if m.closing || m.bgRefresh || m.backoffErrLocked(now) != nil {
		m.mu.Unlock()
		return
	}
	m.bgRefresh = true
	m.bg.Add(1)
	m.mu.Unlock()
	bctx := context.WithoutCancel(ctx)
	go func() {
		defer m.bg.Done()
		err := m.RefreshIfNeeded(bctx)
		m.mu.Lock()
		m.bgRefresh = false
		closing := m.closing
		m.mu.Unlock()
		if err != nil && report != nil && !closing {
			report(err)
		}
	}()
}

func (m *Manager) refreshOnce(ctx context.Context, seen uint64, force bool) error {
	m.ioMu.Lock()
	defer m.ioMu.Unlock()
	if m.isClosing() {
		return ErrClosed
	}
	// While this refresh holds ioMu, cookies a Transport receives are
	// merged in memory only (absorbCookies) and written by this refresh,
	// so that no response waits for the refresh.
	m.setRefreshingIO(true)
	defer m.setRefreshingIO(false)
	// Close ends the wait for the lock, but not a RefreshFunc call under
	// way: a refresh token the server rotated must be stored.
	lctx, cancelLock := context.WithCancel(ctx)
	stop := context.AfterFunc(m.life, cancelLock)
	lk, err := m.lock(lctx)
	stop()
	cancelLock()
	if err != nil {
		return err
	}
	defer m.unlock(ctx, lk)
	defer m.writeRiders(ctx)

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
	if (!force || m.tokenGen != seen) && !m.cfg.win.due(cur, m.now()) {
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
	size, err := m.tokensFitLocked(tokens, now)
	if err != nil {
		m.mu.Unlock()
		tokens.Destroy()
		cookies.Destroy()
		return &RefreshError{Err: err}
	}
	if cookies != nil {
		view := *m.sess
		view.Tokens = storedTokens(m.sess, tokens)
		view.Metadata.LastRefreshedAt = &now
		view.Cookies = m.sess.Cookies.mergedView(*cookies)
		if n, err := fits(&view); err != nil {
			m.cfg.logger.Warn("session: cookies of a refresh not kept", "session", m.store.Name(), "err", err)
			cookies.Destroy()
			cookies = nil
		} else {
			size = n
		}
	}
	setTokens(m.sess, tokens, now)
	m.tokenGen++
	m.changedLocked()
	m.size, m.sizeOK = size, true // the length of the session as it is now
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
			return &RefreshError{Err: cause, Superseded: rerr == nil}
		default:
			m.cfg.logger.Error("session: could not delete a rejected session", "session", m.store.Name(), "err", err)
		}
	}
	m.mu.Lock()
	m.wipeLocked()
	m.mu.Unlock()
	return &RefreshError{Err: cause, Dropped: true}
}

func (m *Manager) setRefreshingIO(on bool) {
	m.mu.Lock()
	m.refreshingIO = on
	m.mu.Unlock()
}

// writeRiders writes, with auto-save and under the store lock the refresh
// holds, what was merged while it ran (cookies a Transport received);
// called on every way out of a refresh that got the lock.
func (m *Manager) writeRiders(ctx context.Context) {
	m.setRefreshingIO(false)
	if !m.cfg.autoSave || !m.needsWrite() {
		return
	}
	if err := m.writeLocked(ctx, true); err != nil {
		m.cfg.logger.Warn("session: cookies received during a refresh not saved yet", "session", m.store.Name(), "err", err)
	}
}

// absorbCookies merges cookies from a response. While this Manager's
// refresh holds its I/O (a slow auth server, a lock held by another
// process), the merge is made in memory and written when the refresh
// ends, so that the response does not wait for the refresh; otherwise it
// is UpdateCookies, durable on return.
func (m *Manager) absorbCookies(ctx context.Context, c AuthCookies) error {
	m.mu.Lock()
	riding := m.refreshingIO
	m.mu.Unlock()
	if !riding {
		return m.UpdateCookies(ctx, c)
	}
	_, err := m.mergeCookies(c, nil)
	return err
}
