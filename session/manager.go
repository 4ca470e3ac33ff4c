package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/sessionvault/sessionvault/backends"
)

// Manager keeps one authentication session, in memory and sealed in a
// Store: the Go port of axiomtrade-rs's SessionManager. It is safe for
// concurrent use.
//
// Every write is based on the stored version the Manager last saw, with
// the version check. When another writer (another Manager, another
// process) stored a newer version, the write takes the store's lock,
// re-reads it, re-applies this Manager's changes on top (tokens and the
// Turnkey session replace, cookies merge, last_api_call_at keeps the
// later), and writes again with the version check, under the lock. No
// update is lost, and a durable update fails only when the storage does.
//
// Every update is checked against the bounds of the stored form before
// it changes anything (see ErrTooLarge): a session the Manager saves
// always loads again.
//
// Close the Manager when done: it flushes metadata written behind and
// wipes every secret it holds.
//
// The zero value is not usable: call NewManager.
type Manager struct {
	store Store
	cfg   config

	// mu guards the in-memory state. It is never held during I/O, so
	// that MarkAPICall and the readers never wait for the disk.
	mu       sync.Mutex
	sess     *AuthSession
	version  backends.Version // the stored version sess is based on
	pend     pending          // changes not yet written
	tokenGen uint64           // counts changes of the access token
	hdr      headerCache      // request headers built from sess
	size     int              // the length of sess's stored form, when sizeOK
	sizeOK   bool             // size is known (reset by every change)
	apiWarn  bool             // MarkAPICall logged a refusal since the last change
	closing  bool             // Close began: no new changes
	closed   bool             // Close finished: memory wiped
	// closeDone is closed when the first Close has returned from every
	// owned closer (made by NewManager; read without mu).
	closeDone chan struct{}
	backoff   backoff // failed refreshes
	reauth    bool    // the session was dropped because its refresh token was refused
	// refreshingIO: a refresh holds ioMu (see absorbCookies).
	refreshingIO bool

	// Background refresh (refresh-ahead): at most one at a time
	// (bgRefresh, guarded by mu); Close cancels life and waits for bg.
	bgRefresh  bool
	bg         sync.WaitGroup
	life       context.Context
	lifeCancel context.CancelFunc

	// ioMu serializes this Manager's store writes. Lock order: ioMu, then
	// the store lock (Store.Lock, taken by a refresh and by a write that
	// met a conflict), then mu.
	ioMu sync.Mutex
	// scratch (guarded by ioMu) is the buffer every write encodes the
	// plaintext into, kept between writes so that a write does not
	// allocate one (see plaintextLocked). It holds zeros whenever no
	// write is using it.
	scratch []byte

	// Write-behind of metadata.
	kick      chan struct{}
	stop      chan struct{}
	flushDone chan struct{}

	refreshes singleflight.Group
}

// pending records which parts of the in-memory session changed since the
// last write, so that a write that meets a newer stored version can
// re-apply exactly those changes. Values come from the in-memory session,
// except the cookie delta, which is merged rather than replaced.
type pending struct {
	replace bool         // CreateSession: the whole session is ours
	tokens  bool         // UpdateTokens or a refresh
	turnkey bool         // UpdateTurnkeySession
	api     bool         // MarkAPICall
	cookies *AuthCookies // merged deltas of UpdateCookies (owned)
	// waiters are the UpdateCookies calls whose changes are in cookies,
	// told if the delta is refused when re-applied on a newer stored
	// session that has no room for it.
	waiters []*cookieWaiter
}

// cookieWaiter is how an UpdateCookies call learns that its change was
// refused after a re-read. refused is guarded by Manager.mu.
type cookieWaiter struct{ refused error }

func (p *pending) empty() bool {
	return !p.replace && !p.tokens && !p.turnkey && !p.api && p.cookies == nil
}

// destroy wipes the cookie delta and empties p.
func (p *pending) destroy() {
	p.cookies.Destroy()
	*p = pending{}
}

// absorb merges newer changes q into p; q is left empty.
func (p *pending) absorb(q *pending) {
	p.replace = p.replace || q.replace
	p.tokens = p.tokens || q.tokens
	p.turnkey = p.turnkey || q.turnkey
	p.api = p.api || q.api
	if q.cookies != nil {
		if p.cookies == nil {
			p.cookies, q.cookies = q.cookies, nil
		} else {
			p.cookies.mergeDelta(*q.cookies)
		}
	}
	p.waiters = append(p.waiters, q.waiters...)
	q.destroy()
}

// NewManager returns a Manager for the session kept in store, loading it
// if one is stored. A stored session that cannot be read (a wrong key,
// corrupt data, a store that is away) is an error: never a silent fresh
// start, which would overwrite it on the first save. The error wraps the
// store's, so errors.Is(err, vault.ErrWrongKey) and the like work.
func NewManager(ctx context.Context, store Store, opts ...Option) (*Manager, error) {
	if store == nil {
		panic("session: NewManager with a nil Store")
	}
	m := &Manager{store: store, cfg: defaultConfig(), closeDone: make(chan struct{})}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(&m.cfg)
		}
	}
	m.life, m.lifeCancel = context.WithCancel(context.Background())
	s, v, err := m.read(ctx)
	switch {
	case errors.Is(err, ErrNoSession):
	case err != nil:
		m.lifeCancel()
		return nil, err
	default:
		m.sess, m.version = s, v
	}
	if m.cfg.autoSave {
		m.kick = make(chan struct{}, 1)
		m.stop = make(chan struct{})
		m.flushDone = make(chan struct{})
		go m.flushLoop()
	}
	return m, nil
}

// Name returns the session's name in its store.
func (m *Manager) Name() string { return m.store.Name() }

func (m *Manager) now() time.Time { return m.cfg.clock().UTC() }

// read opens and decodes the stored session. A missing one is ErrNoSession.
func (m *Manager) read(ctx context.Context) (*AuthSession, backends.Version, error) {
	var (
		pt  []byte
		v   backends.Version
		err error
	)
	err = retryUnavailable(ctx, func() error {
		pt, v, err = m.store.Open(ctx)
		return err
	})
	if err != nil {
		wipe(pt)
		if errors.Is(err, backends.ErrNotFound) {
			return nil, "", &StoreError{Op: "open", Name: m.store.Name(), Kind: ErrNoSession, Err: err}
		}
		return nil, "", &StoreError{Op: "open", Name: m.store.Name(), Err: err}
	}
	s, err := decodeSession(pt, m.now(), m.cfg.userAgent)
	wipe(pt)
	if err != nil {
		return nil, "", &StoreError{Op: "open", Name: m.store.Name(), Err: err}
	}
	return s, v, nil
}

// retryUnavailable runs op again, with backoff, while it fails with
// backends.ErrUnavailable, at most maxUnavailableRetries times.
func retryUnavailable(ctx context.Context, op func() error) error {
	delay := unavailableBackoff
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || !errors.Is(err, backends.ErrUnavailable) || attempt == maxUnavailableRetries {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
	}
}

// change applies f to the in-memory session under mu. It fails with
// ErrClosed after Close and ErrNotAuthenticated without a session. f
// returns whether it changed the session, and an error (a bound of the
// stored form) if it refused to change it. When f changed the session and
// measured the result, it returns its stored length as size (else -1).
func (m *Manager) change(f func(s *AuthSession, p *pending) (changed bool, size int, err error)) (changed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false, ErrClosed
	}
	if m.sess == nil {
		return false, ErrNotAuthenticated
	}
	changed, size, err := f(m.sess, &m.pend)
	if changed {
		m.changedLocked()
		if size >= 0 {
			m.size, m.sizeOK = size, true
		}
	}
	return changed, err
}

// changedLocked drops what is derived from the in-memory session (the
// request headers, the stored length) after a change. Called with mu held.
func (m *Manager) changedLocked() {
	m.hdr = headerCache{}
	m.sizeOK = false
	m.apiWarn = false
}

// sizeLocked returns the length of the in-memory session's stored form,
// measuring it once per change; false if it cannot be stored (a session
// loaded from a file past the writer's bounds). Called with mu held.
func (m *Manager) sizeLocked() (int, bool) {
	if !m.sizeOK {
		n, err := m.sess.measure()
		if err != nil {
			return 0, false
		}
		m.size, m.sizeOK = n, true
	}
	return m.size, true
}

// fits checks the session an update would make (a shallow view sharing
// the buffers of the session and the update) against the bounds of the
// stored form, and returns its stored length.
func fits(view *AuthSession) (int, error) { return view.measure() }

// commit writes a change when auto-save is on.
func (m *Manager) commit(ctx context.Context, op string) error {
	if !m.cfg.autoSave {
		return nil
	}
	if err := m.write(ctx, false); err != nil {
		return &NotSavedError{Op: op, Err: err}
	}
	return nil
}

// CreateSession starts a new session from tokens, user information and
// cookies, replacing any session this Manager holds (the seed's
// create_session). The Manager keeps copies; the caller still owns its
// arguments. Nil cookies mean the seed's defaults (no auth cookies,
// g_state {"i_l":0}). With auto-save the session is durable on return; an
// error matching ErrNotSaved means it is in memory only.
func (m *Manager) CreateSession(ctx context.Context, tokens AuthTokens, user *UserInfo, cookies *AuthCookies) error {
	s := newSession(tokens, user, cookies, m.now(), m.cfg.userAgent)
	return m.install(ctx, s, "create session")
}

// CreateSessionFromLoginResult starts a new session from a complete login
// result. Turnkey credentials, when present, become a Turnkey session that
// expires in 30 days, named "user_" and the first eight characters of the
// Turnkey user id (the seed panicked on a shorter id). The caller still
// owns r.
func (m *Manager) CreateSessionFromLoginResult(ctx context.Context, r LoginResult, cookies *AuthCookies) error {
	now := m.now()
	s := newSession(r.Tokens, r.UserInfo, cookies, now, m.cfg.userAgent)
	if r.TurnkeyCredentials != nil {
		s.TurnkeySession = turnkeyFromCredentials(r.TurnkeyCredentials, now)
	}
	return m.install(ctx, s, "create session")
}

func (m *Manager) install(ctx context.Context, s *AuthSession, op string) error {
	size, err := fits(s)
	if err != nil {
		s.Destroy()
		return err
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		s.Destroy()
		return ErrClosed
	}
	m.sess.Destroy()
	m.sess = s
	m.tokenGen++
	m.reauth = false
	m.backoff = backoff{}
	m.changedLocked()
	m.size, m.sizeOK = size, true
	m.pend.destroy()
	m.pend.replace = true
	m.mu.Unlock()
	return m.commit(ctx, op)
}

// UpdateTokens replaces the tokens and sets last_refreshed_at (the seed's
// update_tokens). The Manager keeps a copy of tokens. Without a session it
// fails with ErrNotAuthenticated; tokens the stored form cannot hold
// (longer than 64 KiB, not UTF-8) are refused with an error matching
// ErrTooLarge or ErrInvalidSession, and nothing changes. With auto-save
// the tokens are durable on return; an error matching ErrNotSaved means
// they are in effect in memory but not stored (the next write retries).
func (m *Manager) UpdateTokens(ctx context.Context, tokens AuthTokens) error {
	c := tokens.Clone()
	now := m.now()
	if _, err := m.change(func(s *AuthSession, p *pending) (bool, int, error) {
		size, err := m.tokensFitLocked(c, now)
		if err != nil {
			return false, -1, err
		}
		setTokens(s, c, now)
		m.tokenGen++
		p.tokens = true
		return true, size, nil
	}); err != nil {
		c.Destroy()
		return err
	}
	return m.commit(ctx, "update tokens")
}

// tokensFitLocked checks the session that setTokens(m.sess, t, now) would
// make against the bounds of the stored form, and returns its stored
// length. When the current session's length is known, only the tokens
// and the stamp are measured (the hot path of every token update);
// otherwise the whole view is. Called with mu held.
func (m *Manager) tokensFitLocked(t AuthTokens, now time.Time) (int, error) {
	t = storedTokens(m.sess, t)
	if m.sizeOK {
		return m.sess.withTokens(m.size, &t, now)
	}
	view := *m.sess
	view.Tokens = t
	view.Metadata.LastRefreshedAt = &now
	return fits(&view)
}

// storedTokens returns t as setTokens stores it in s (a view sharing
// their buffers): with s's unknown members of tokens when t has none.
func storedTokens(s *AuthSession, t AuthTokens) AuthTokens {
	if t.extra == nil {
		t.extra = s.Tokens.extra
	}
	return t
}

// setTokens installs tokens (taking ownership) and stamps the refresh.
// Members of the tokens object this package does not know stay, unless t
// brings its own.
func setTokens(s *AuthSession, t AuthTokens, now time.Time) {
	if t.extra == nil {
		t.extra, s.Tokens.extra = s.Tokens.extra, nil
	}
	s.Tokens.Destroy()
	s.Tokens = t
	s.Metadata.LastRefreshedAt = &now
}

// UpdateCookies merges cookies into the session (see AuthCookies.Merge):
// a cookie present in cookies replaces the session's, others are kept,
// deleted ones are removed. A merge that changes nothing writes nothing.
// The caller still owns cookies.
//
// A merge that would leave the session past a bound of the stored form
// (more than 4096 additional cookies, a value over 64 KiB, 1 MiB of JSON
// in all) is refused whole with a *LimitError (ErrTooLarge), before
// anything changes. With auto-save, the same error is returned when the
// merge fitted this Manager's copy but not the newer session another
// writer stored, on which it was re-applied: that session is kept, and
// becomes this Manager's copy. (Without auto-save, such a refusal happens
// at Save, which logs it.)
func (m *Manager) UpdateCookies(ctx context.Context, cookies AuthCookies) error {
	w := &cookieWaiter{}
	changed, err := m.mergeCookies(cookies, w)
	if err != nil || !changed {
		return err
	}
	err = m.commit(ctx, "update cookies")
	m.mu.Lock()
	refused := w.refused
	m.mu.Unlock()
	if refused != nil {
		return refused
	}
	return err
}

// mergeCookies merges cookies into the in-memory session and records the
// delta for the next write; w, if not nil, learns of a refusal when the
// delta is re-applied on a newer stored session.
func (m *Manager) mergeCookies(cookies AuthCookies, w *cookieWaiter) (bool, error) {
	return m.change(func(s *AuthSession, p *pending) (bool, int, error) {
		view := *s
		view.Cookies = s.Cookies.mergedView(cookies)
		size, err := fits(&view)
		if err != nil {
			return false, -1, err
		}
		if !s.Cookies.Merge(cookies) {
			return false, -1, nil
		}
		if p.cookies == nil {
			p.cookies = &AuthCookies{}
		}
		p.cookies.mergeDelta(cookies)
		if w != nil {
			p.waiters = append(p.waiters, w)
		}
		return true, size, nil
	})
}

// UpdateTurnkeySession sets the session's Turnkey session (the seed's
// update_turnkey_session). The Manager keeps a copy. A Turnkey session the
// stored form cannot hold is refused, as UpdateTokens refuses tokens.
func (m *Manager) UpdateTurnkeySession(ctx context.Context, t TurnkeySession) error {
	c := t.Clone()
	if c.APIKeys == nil {
		c.APIKeys = []TurnkeyAPIKey{}
	}
	if _, err := m.change(func(s *AuthSession, p *pending) (bool, int, error) {
		view := *s
		view.TurnkeySession = c
		size, err := fits(&view)
		if err != nil {
			return false, -1, err
		}
		s.TurnkeySession.Destroy()
		s.TurnkeySession = c
		p.turnkey = true
		return true, size, nil
	}); err != nil {
		c.Destroy()
		return err
	}
	return m.commit(ctx, "update turnkey session")
}

// MarkAPICall records an API call now, and the server it went to unless
// server is "" (the seed's mark_api_call). It does no I/O: with auto-save
// the metadata is written behind, at most once per flush interval, and on
// Close. Without a session it does nothing.
//
// It records nothing the stored form cannot hold: a server name that is
// not UTF-8 or is longer than 64 KiB is left out, and a call that would
// take a session at its 1 MiB bound past it is not recorded (logged), nor
// one at a time outside the years 0000-9999 (a clock set so), so that the
// write behind never fails.
func (m *Manager) MarkAPICall(server string) {
	now := m.now()
	m.mu.Lock()
	if m.sess == nil || m.closing {
		m.mu.Unlock()
		return
	}
	md := &m.sess.Metadata
	// Refusals are logged once per change of the session: a caller may
	// make thousands of calls a second.
	warn := func(msg string) {
		if !m.apiWarn {
			m.apiWarn = true
			m.cfg.logger.Warn(msg, "session", m.store.Name())
		}
	}
	setServer := server != "" && (md.CurrentAPIServer == nil || *md.CurrentAPIServer != server)
	if setServer && (len(server) > maxStringLen || !utf8.ValidString(server)) {
		setServer = false
		warn("session: API server name not recorded: not UTF-8 or longer than the limit")
	}
	size, ok := m.sizeLocked()
	if ok {
		size += optTimeLen(&now) - optTimeLen(md.LastAPICallAt)
		if setServer {
			size += quotedLen(server) - optStrLen(md.CurrentAPIServer)
		}
	}
	if !timeInRange(now) {
		warn("session: API call not recorded: the clock is outside the years 0000-9999")
		m.mu.Unlock()
		return
	}
	if !ok || size > maxSessionJSON {
		warn("session: API call not recorded: the session is at its size limit")
		m.mu.Unlock()
		return
	}
	if md.LastAPICallAt == nil {
		md.LastAPICallAt = new(time.Time)
	}
	*md.LastAPICallAt = now
	if setServer {
		md.CurrentAPIServer = &server
	}
	m.size = size // the headers built from the session did not change
	m.pend.api = true
	m.mu.Unlock()
	if m.kick != nil {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// Save writes the in-memory session (the seed's save_session). Without a
// session it does nothing.
func (m *Manager) Save(ctx context.Context) error {
	if err := m.write(ctx, false); err != nil {
		return &NotSavedError{Op: "save", Err: err}
	}
	return nil
}

// Load reads the stored session into memory (the seed's load_session).
// Changes not yet written are applied on top of it, so none is lost. A
// missing stored session is an error matching ErrNoSession and leaves
// memory as it was.
func (m *Manager) Load(ctx context.Context) error {
	m.ioMu.Lock()
	defer m.ioMu.Unlock()
	if m.isClosing() {
		return ErrClosed
	}
	s, v, err := m.read(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.adoptLocked(s, v)
	m.mu.Unlock()
	return nil
}

func (m *Manager) isClosing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// adoptLocked makes theirs (stored at v; owned) the base of the in-memory
// session, re-applying pending changes. A pending cookie delta that does
// not fit theirs is refused: its UpdateCookies calls get the error, and
// theirs keeps its cookies. Called with mu held.
func (m *Manager) adoptLocked(theirs *AuthSession, v backends.Version) {
	s, refused := replay(theirs, &m.pend, m.sess)
	if refused != nil {
		for _, w := range m.pend.waiters {
			w.refused = refused
		}
		m.pend.cookies.Destroy()
		m.pend.cookies, m.pend.waiters = nil, nil
		m.cfg.logger.Warn("session: cookie update refused: the newer stored session has no room for it", "session", m.store.Name(), "err", refused)
	}
	if s != m.sess {
		if m.sess == nil || !m.sess.Tokens.AccessToken.Equal(s.Tokens.AccessToken) {
			m.tokenGen++
		}
		m.sess.Destroy()
		m.sess = s
	}
	m.changedLocked()
	m.version = v
}

// replay re-applies the pending changes p, whose values are in ours, on
// top of theirs (which it takes over) and returns the result: ours itself
// when p replaces the session, else theirs, changed. Tokens replace
// theirs unless theirs were refreshed later; cookies merge, unless the
// merge would take the session past a bound of the stored form: then
// they are left out and refused says why; last_api_call_at keeps the
// later. It leaves ours and p to the caller.
func replay(theirs *AuthSession, p *pending, ours *AuthSession) (s *AuthSession, refused error) {
	if ours == nil {
		return theirs, nil
	}
	if p.replace || theirs == nil {
		theirs.Destroy()
		return ours, nil
	}
	if p.tokens && !later(theirs.Metadata.LastRefreshedAt, ours.Metadata.LastRefreshedAt) {
		theirs.Tokens.Destroy()
		theirs.Tokens = ours.Tokens.Clone()
		theirs.Metadata.LastRefreshedAt = cloneTime(ours.Metadata.LastRefreshedAt)
	}
	if p.turnkey {
		theirs.TurnkeySession.Destroy()
		theirs.TurnkeySession = ours.TurnkeySession.Clone()
	}
	if p.api && later(ours.Metadata.LastAPICallAt, theirs.Metadata.LastAPICallAt) {
		theirs.Metadata.LastAPICallAt = cloneTime(ours.Metadata.LastAPICallAt)
		if ours.Metadata.CurrentAPIServer != nil {
			theirs.Metadata.CurrentAPIServer = cloneStr(ours.Metadata.CurrentAPIServer)
		}
	}
	// Cookies last, checked on the session with everything else applied:
	// they are what grows when writers merge.
	if p.cookies != nil {
		view := *theirs
		view.Cookies = theirs.Cookies.mergedView(*p.cookies)
		if _, err := fits(&view); err != nil {
			return theirs, err
		}
		theirs.Cookies.Merge(*p.cookies)
	}
	return theirs, nil
}

// later reports whether a is set and strictly after b (or b unset).
func later(a, b *time.Time) bool {
	return a != nil && (b == nil || a.After(*b))
}

var errDeletedElsewhere = fmt.Errorf("%w: deleted by another writer; the in-memory copy was wiped", ErrNoSession)

// write stores the in-memory session with the version check (see
// writeLocked: under the store's lock only after a conflict). It returns nil without a session or
// without anything to write (the session is stored and unchanged).
func (m *Manager) write(ctx context.Context, locked bool) (err error) {
	m.ioMu.Lock()
	defer m.ioMu.Unlock()
	return m.writeLocked(ctx, locked)
}

// writeLocked writes with ioMu held. Unless locked (the caller holds the
// store's lock), the first attempt takes no lock: it is a compare-and-set
// on the version this Manager last read or wrote, which the store checks
// under its own write lock, so no other writer's update can be lost or
// interleaved with it. Only a conflict (another writer stored a newer
// version meanwhile) makes the write take the store's lock, re-read,
// re-apply the pending changes and try again under it. A write that meets
// no conflict (every write of a process that is alone on its session)
// costs no lock round: two flock(2) and a path check on the file backend,
// two round trips on Redis. A refresh in another process holds the lock
// for as long as its auth server takes; an unconflicted write does not
// wait for it, and the refresh's own write then conflicts and re-applies
// its tokens on top (later stamps win, cookies merge).
//
// Under the lock, a conflict comes from a writer that does not hold it
// (another process's first attempt, a key rotation re-sealing the
// session, an older release of this package). The write then re-reads,
// re-applies and tries again, for as long as the stored version moves:
// each conflict is progress by that other writer, so there is no retry
// count after which an update would be given up. A store that reports a
// conflict but still holds the version written over contradicts itself:
// that is a storage failure, returned.
func (m *Manager) writeLocked(ctx context.Context, locked bool) (err error) {
	if !m.needsWrite() {
		return nil
	}
	var lk backends.Lock
	defer func() {
		if lk != nil {
			m.unlock(ctx, lk)
		}
	}()
	for {
		base, conflict, err := m.attemptWrite(ctx)
		if conflict == nil || err != nil {
			return err
		}
		// Someone stored a newer version: under the lock, re-read it
		// and re-apply our changes.
		if !locked {
			if lk, err = m.lock(ctx); err != nil {
				return err
			}
			locked = true
		}
		theirs, v, rerr := m.read(ctx)
		if rerr != nil && !errors.Is(rerr, ErrNoSession) {
			return rerr
		}
		if theirs != nil && v == base {
			theirs.Destroy()
			return &StoreError{Op: "seal", Name: m.store.Name(),
				Err: fmt.Errorf("the store reports a conflict but still holds the version written over: %w", conflict)}
		}
		m.mu.Lock()
		if theirs == nil && !m.pend.replace {
			m.wipeLocked()
			m.mu.Unlock()
			return errDeletedElsewhere
		}
		m.adoptLocked(theirs, v)
		m.mu.Unlock()
	}
}

// attemptWrite seals the in-memory session with its pending changes over
// the version it is based on, once. Both errors nil: nothing is left to
// write (written, or nothing pending). A non-nil conflict is the store's
// version conflict: the pending changes are back in place and base is the
// version the attempt was based on. Called with ioMu held.
func (m *Manager) attemptWrite(ctx context.Context) (base backends.Version, conflict, err error) {
	m.mu.Lock()
	if !m.needsWriteLocked() {
		m.mu.Unlock()
		return "", nil, nil
	}
	p := m.pend
	m.pend = pending{}
	base = m.version
	pt, err := m.plaintextLocked()
	m.mu.Unlock()
	if err != nil {
		m.restorePending(&p)
		return base, nil, err
	}
	var v backends.Version
	err = func() error {
		// Deferred, so that a Store whose Seal panics (and a caller
		// that recovers) leaves no plaintext in the kept buffer
		// either.
		defer m.keepScratch(pt)
		return retryUnavailable(ctx, func() error {
			var err error
			v, err = m.store.Seal(ctx, pt, base)
			return err
		})
	}()
	if err == nil {
		m.mu.Lock()
		m.version = v
		m.mu.Unlock()
		p.destroy()
		return base, nil, nil
	}
	m.restorePending(&p)
	if !errors.Is(err, backends.ErrConflict) {
		return base, nil, &StoreError{Op: "seal", Name: m.store.Name(), Err: err}
	}
	return base, err, nil
}

// plaintextLocked encodes the in-memory session into the kept scratch
// buffer (a new one when it is too small: its old array holds only zeros
// and is dropped). The caller passes the result to keepScratch once it is
// sealed. Called with ioMu and mu held.
func (m *Manager) plaintextLocked() ([]byte, error) {
	need := m.sess.sizeHint()
	if m.sizeOK {
		need = m.size // exact
	}
	if cap(m.scratch) < need {
		m.scratch = make([]byte, 0, need+scratchSlack)
	}
	pt, err := m.sess.encodeInto(m.scratch)
	if err != nil && cap(m.scratch) > maxKeptScratch {
		m.scratch = nil // wiped by the encoder
	}
	return pt, err
}

// keepScratch wipes pt, the plaintext plaintextLocked returned, and keeps
// its array for the next write unless it is larger than maxKeptScratch.
// Whatever the encoder outgrew it already wiped. Called with ioMu held.
func (m *Manager) keepScratch(pt []byte) {
	wipe(pt[:cap(pt)]) // the whole array: a Store may have written past len
	if cap(pt) > maxKeptScratch {
		m.scratch = nil
		return
	}
	m.scratch = pt[:0]
}

// needsWrite reports whether there is anything to write: a session with
// changes not yet stored, or never stored.
func (m *Manager) needsWrite() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.needsWriteLocked()
}

func (m *Manager) needsWriteLocked() bool {
	return !m.closed && m.sess != nil && (!m.pend.empty() || m.version == backends.Absent)
}

// unlock releases a store lock, even after ctx ended: a lease must be
// released.
func (m *Manager) unlock(ctx context.Context, lk backends.Lock) {
	uctx := newUnlockContext(ctx, unlockTimeout)
	defer uctx.stop()
	if err := lk.Unlock(uctx); err != nil {
		m.cfg.logger.Warn("session: unlock failed", "session", m.store.Name(), "err", err)
	}
}

// unlockContext is what context.WithTimeout(context.WithoutCancel(parent),
// d) returns, made for the unlock after every write: the parent's values,
// none of its cancellation, a deadline d away. It starts no timer until
// Done is first called, so that an unlock that never waits (a file lock
// is one system call) costs no timer and no allocation beyond itself.
type unlockContext struct {
	parent   context.Context // context.WithoutCancel of the caller's: for Value only
	deadline time.Time

	once     sync.Once // makes done, and the timer that closes it
	done     chan struct{}
	timer    *time.Timer
	canceled atomic.Bool // stop closed done before the deadline
}

func newUnlockContext(parent context.Context, d time.Duration) *unlockContext {
	return &unlockContext{parent: context.WithoutCancel(parent), deadline: time.Now().Add(d)}
}

// Deadline returns the deadline d from newUnlockContext.
func (c *unlockContext) Deadline() (time.Time, bool) { return c.deadline, true }

// Value returns the parent's value for key, as
// context.WithoutCancel(parent) does: parent is that, so that
// context.Cause of an unlockContext is its own Err, never the cause of a
// caller's context it does not follow.
func (c *unlockContext) Value(key any) any { return c.parent.Value(key) }

// Done returns a channel closed at the deadline or by stop.
func (c *unlockContext) Done() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		if d := time.Until(c.deadline); d > 0 {
			c.timer = time.AfterFunc(d, func() { close(c.done) })
		} else {
			close(c.done)
		}
	})
	return c.done
}

// Err returns nil until Done is closed, then context.DeadlineExceeded, or
// context.Canceled when stop closed it first.
func (c *unlockContext) Err() error {
	select {
	case <-c.Done():
		if c.canceled.Load() {
			return context.Canceled
		}
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// stop ends the context, as the cancel function of WithTimeout does: Done
// is closed (made closed if it was never asked for) and the timer, if
// any, stopped.
func (c *unlockContext) stop() {
	first := false
	c.once.Do(func() {
		first = true
		c.canceled.Store(true)
		c.done = closedChan
	})
	if !first && c.timer != nil && c.timer.Stop() {
		c.canceled.Store(true) // the timer had not fired: close done here
		close(c.done)
	}
}

func (c *unlockContext) String() string { return "session.unlockContext" }

// closedChan is the Done of an unlockContext stopped before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// restorePending puts back changes whose write failed, under newer ones.
func (m *Manager) restorePending(p *pending) {
	m.mu.Lock()
	p.absorb(&m.pend)
	m.pend = *p
	m.mu.Unlock()
}

func (m *Manager) lock(ctx context.Context) (backends.Lock, error) {
	var lk backends.Lock
	err := retryUnavailable(ctx, func() error {
		var err error
		lk, err = m.store.Lock(ctx)
		return err
	})
	if err != nil {
		return nil, &StoreError{Op: "lock", Name: m.store.Name(), Err: err}
	}
	return lk, nil
}

// wipeLocked destroys the in-memory session and pending changes.
func (m *Manager) wipeLocked() {
	m.sess.Destroy()
	m.sess = nil
	m.tokenGen++
	m.changedLocked()
	m.pend.destroy()
	m.version = backends.Absent
}

// ClearSession wipes the session from memory and deletes the stored copy
// (the seed's clear_session; it deleted only with auto-save, but a
// credential left at rest after a logout is a live credential, so this
// deletes always). Memory is wiped even when the delete fails.
func (m *Manager) ClearSession(ctx context.Context) error {
	m.ioMu.Lock()
	defer m.ioMu.Unlock()
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return ErrClosed
	}
	m.wipeLocked()
	m.mu.Unlock()
	err := retryUnavailable(ctx, func() error { return m.store.Delete(ctx, backends.Any) })
	if err != nil && !errors.Is(err, backends.ErrNotFound) {
		return &StoreError{Op: "delete", Name: m.store.Name(), Err: err}
	}
	return nil
}

// Close flushes metadata written behind (with auto-save), then wipes every
// secret the Manager holds, then closes what WithOwned handed it, in order.
// Without auto-save, changes not saved are dropped. The error is a
// *NotSavedError if the flush failed, joined with the errors of the owned
// closers, if any failed (each is closed whatever the others return).
// Later calls return ErrClosed. A second Close closes nothing again: it
// waits until the first has returned from its last owned closer (so that
// whatever the stack held is released when either returns), then returns
// nil; if ctx ends first, ctx.Err().
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		select {
		case <-m.closeDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.closing = true
	m.mu.Unlock()
	defer close(m.closeDone)
	m.lifeCancel() // ends a background refresh's wait for the lock
	m.bg.Wait()
	if m.stop != nil {
		close(m.stop)
		<-m.flushDone
	}
	var err error
	if m.cfg.autoSave {
		if werr := m.write(ctx, false); werr != nil {
			err = &NotSavedError{Op: "close", Err: werr}
		}
	}
	m.ioMu.Lock()
	m.mu.Lock()
	m.wipeLocked()
	m.closed = true
	m.mu.Unlock()
	wipe(m.scratch[:cap(m.scratch)]) // zeros already; a closed Manager keeps no buffer
	m.scratch = nil
	m.ioMu.Unlock()
	var cerrs []error
	for _, c := range m.cfg.owned {
		if cerr := c.Close(); cerr != nil {
			cerrs = append(cerrs, cerr)
		}
	}
	m.cfg.owned = nil
	if len(cerrs) > 0 {
		return errors.Join(append([]error{err}, cerrs...)...)
	}
	return err
}

// flushLoop writes metadata behind: after a MarkAPICall it writes at once
// if idle, else one flush interval after the previous write ended, so
// there is never more than one write per interval.
func (m *Manager) flushLoop() {
	defer close(m.flushDone)
	var last time.Time
	for {
		select {
		case <-m.stop:
			return
		case <-m.kick:
		}
		if !last.IsZero() {
			if wait := m.cfg.flushInterval - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-m.stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		select { // calls made while waiting are in this write
		case <-m.kick:
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		if err := m.write(ctx, false); err != nil {
			m.cfg.logger.Error("session: metadata write-behind failed", "session", m.store.Name(), "err", err)
		}
		cancel()
		last = time.Now() // a full interval from the end of one write to the start of the next
	}
}
