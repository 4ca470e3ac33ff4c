package session

import (
	"strconv"
	"time"
)

// Secrets leave the Manager in one of two ways: lent to a callback for the
// duration of a call (WithAccessToken, WithRefreshToken), or as a deep
// copy that the caller must Destroy (Snapshot, TurnkeySession). Neither
// makes a Go string.

// WithAccessToken calls fn with a copy of the access token, destroyed when
// fn returns; fn must not keep it. It fails with ErrNotAuthenticated
// without a session, else returns fn's error. fn may call the Manager.
func (m *Manager) WithAccessToken(fn func(Secret) error) error {
	return m.withSecret(func(s *AuthSession) Secret { return s.Tokens.AccessToken }, fn)
}

// WithRefreshToken calls fn with a copy of the refresh token, as
// WithAccessToken does.
func (m *Manager) WithRefreshToken(fn func(Secret) error) error {
	return m.withSecret(func(s *AuthSession) Secret { return s.Tokens.RefreshToken }, fn)
}

func (m *Manager) withSecret(get func(*AuthSession) Secret, fn func(Secret) error) error {
	m.mu.Lock()
	if m.sess == nil {
		m.mu.Unlock()
		return ErrNotAuthenticated
	}
	c := get(m.sess).Clone()
	m.mu.Unlock()
	defer c.Destroy()
	return fn(c)
}

// Snapshot returns a deep copy of the session. The caller owns it and must
// Destroy it. It fails with ErrNotAuthenticated without a session.
func (m *Manager) Snapshot() (*AuthSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil, ErrNotAuthenticated
	}
	return m.sess.Clone(), nil
}

// TurnkeySession returns a deep copy of the Turnkey session, which the
// caller must Destroy, or nil if there is none.
func (m *Manager) TurnkeySession() *TurnkeySession {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil
	}
	return m.sess.TurnkeySession.Clone()
}

// UserInfo returns a copy of the user information, or nil.
func (m *Manager) UserInfo() *UserInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil
	}
	return m.sess.UserInfo.Clone()
}

// UserAgent returns the session's user agent (the seed's get_user_agent),
// or "" without a session.
func (m *Manager) UserAgent() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return ""
	}
	return m.sess.Metadata.UserAgent
}

// Metadata returns a copy of the session's metadata; false without a
// session.
func (m *Manager) Metadata() (SessionMetadata, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return SessionMetadata{}, false
	}
	return m.sess.Metadata.Clone(), true
}

// HasSession reports whether the Manager holds a session.
func (m *Manager) HasSession() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sess != nil
}

func (m *Manager) check(f func(s *AuthSession, now time.Time) bool) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sess != nil && f(m.sess, now)
}

// IsSessionValid reports whether there is a session whose tokens are not
// expired (see WithExpiryBuffer for when they count as expired) and that
// carries the required cookies (WithRequiredCookies; by default both auth
// cookies), as the seed's is_session_valid.
func (m *Manager) IsSessionValid() bool {
	return m.check(func(s *AuthSession, now time.Time) bool {
		return !m.cfg.win.expired(s, now) && hasCookies(s, m.cfg.required)
	})
}

// NeedsRefresh reports whether there is a session whose tokens are due for
// a refresh (see WithRefreshBuffer): exactly when Refresh would get new
// tokens, so that the loop
//
//	if m.NeedsRefresh() {
//		err = m.Refresh(ctx)
//	}
//
// refreshes once per token lifetime. Unlike the seed's needs_refresh
// (AuthSession.NeedsRefresh) it ignores the Turnkey session, which a
// RefreshFunc does not renew: a Turnkey session near its expiry would make
// that loop rotate the tokens on every turn. Ask TurnkeyNeedsRefresh for
// it. RefreshIfNeeded is the loop in one call.
func (m *Manager) NeedsRefresh() bool {
	return m.check(m.cfg.win.due)
}

// TokensNeedRefresh is NeedsRefresh, under the name that says what it
// checks.
func (m *Manager) TokensNeedRefresh() bool { return m.NeedsRefresh() }

// TokensExpired reports whether there is a session whose tokens count as
// expired (see WithExpiryBuffer).
func (m *Manager) TokensExpired() bool {
	return m.check(m.cfg.win.expired)
}

// TurnkeyNeedsRefresh reports whether the session's Turnkey session needs
// a refresh (one hour before its expiry). Refresh does not renew it: the
// caller does, through UpdateTurnkeySession.
func (m *Manager) TurnkeyNeedsRefresh() bool {
	return m.check(func(s *AuthSession, now time.Time) bool { return s.TurnkeySession.NeedsRefresh(now) })
}

// HasValidCookies reports whether the session carries the required
// cookies (WithRequiredCookies; by default both auth cookies).
func (m *Manager) HasValidCookies() bool {
	return m.check(func(s *AuthSession, _ time.Time) bool { return hasCookies(s, m.cfg.required) })
}

// Summary describes the session in one line, as the seed's
// get_session_summary does, for example
//
//	Session: VALID | Tokens: VALID | Cookies: PRESENT | Turnkey: ACTIVE | Age: 45m | Last API: 2m ago
//
// Session is VALID or INVALID (IsSessionValid); Tokens VALID,
// NEEDS_REFRESH or EXPIRED; Cookies PRESENT or MISSING (the required
// cookies); Turnkey ACTIVE or NOT_SET; Last API "Nm ago" or NEVER.
// Minutes are whole, truncated toward zero, and right for any two
// timestamps the reader accepts (years 0000-9999), negative when the
// timestamp is in the future. Without a session it returns "No active
// session". It contains no secret.
func (m *Manager) Summary() string {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return summary(m.sess, now, m.cfg.win, m.cfg.required)
}

func summary(s *AuthSession, now time.Time, w windows, required []string) string {
	if s == nil {
		return "No active session"
	}
	expired := w.expired(s, now)
	cookiesOK := hasCookies(s, required)
	valid := "INVALID"
	if !expired && cookiesOK {
		valid = "VALID"
	}
	tokens := "VALID"
	switch {
	case expired:
		tokens = "EXPIRED"
	case w.due(s, now):
		tokens = "NEEDS_REFRESH"
	}
	cookies := "MISSING"
	if cookiesOK {
		cookies = "PRESENT"
	}
	turnkey := "NOT_SET"
	if s.TurnkeySession != nil {
		turnkey = "ACTIVE"
	}
	last := "NEVER"
	if mins, ok := s.Metadata.MinutesSinceLastAPICall(now); ok {
		last = strconv.FormatInt(mins, 10) + "m ago"
	}
	return "Session: " + valid + " | Tokens: " + tokens + " | Cookies: " + cookies + " | Turnkey: " + turnkey +
		" | Age: " + strconv.FormatInt(s.Metadata.AgeMinutes(now), 10) + "m | Last API: " + last
}

// Summary is the summary line of s at now with the default windows and
// required cookies (see Manager.Summary).
func (s *AuthSession) Summary(now time.Time) string {
	return summary(s, now, windows{}, defaultRequiredCookies)
}

// CookieHeader returns the value of a Cookie header carrying the session's
// cookies, in the seed's order (g_state, auth-refresh-token,
// auth-access-token, then the others by name), and false when there is no
// session or no cookie. A cookie whose name or value would break the
// header (a ';', a control character, an invalid name) is left out.
//
// The result is a Go string, which cannot be wiped: net/http needs one.
// The Manager builds it once per change of the cookies and hands the same
// string to every caller (and to the Transport), so requests do not
// multiply copies.
func (m *Manager) CookieHeader() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return "", false
	}
	h := m.headersLocked()
	return h.cookie, h.hasCookie
}
