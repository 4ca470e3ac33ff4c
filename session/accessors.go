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
// expired (five-minute buffer) and that has both auth cookies.
func (m *Manager) IsSessionValid() bool {
	return m.check((*AuthSession).IsValid)
}

// NeedsRefresh reports whether there is a session whose tokens need a
// refresh (fifteen minutes before expiry) or whose Turnkey session does
// (one hour before its expiry).
func (m *Manager) NeedsRefresh() bool {
	return m.check((*AuthSession).NeedsRefresh)
}

// TokensNeedRefresh reports whether there is a session whose tokens need a
// refresh; unlike NeedsRefresh it ignores the Turnkey session, which
// RefreshFunc does not renew.
func (m *Manager) TokensNeedRefresh() bool {
	return m.check(func(s *AuthSession, now time.Time) bool { return s.Tokens.NeedsRefresh(now) })
}

// TokensExpired reports whether there is a session whose tokens count as
// expired (five minutes before expiry).
func (m *Manager) TokensExpired() bool {
	return m.check(func(s *AuthSession, now time.Time) bool { return s.Tokens.IsExpired(now) })
}

// TurnkeyNeedsRefresh reports whether the session's Turnkey session needs
// a refresh.
func (m *Manager) TurnkeyNeedsRefresh() bool {
	return m.check(func(s *AuthSession, now time.Time) bool { return s.TurnkeySession.NeedsRefresh(now) })
}

// HasValidCookies reports whether the session has both auth cookies.
func (m *Manager) HasValidCookies() bool {
	return m.check(func(s *AuthSession, _ time.Time) bool { return s.HasValidCookies() })
}

// Summary describes the session in one line, as the seed's
// get_session_summary does, for example
//
//	Session: VALID | Tokens: VALID | Cookies: PRESENT | Turnkey: ACTIVE | Age: 45m | Last API: 2m ago
//
// Session is VALID or INVALID; Tokens VALID, NEEDS_REFRESH or EXPIRED;
// Cookies PRESENT or MISSING; Turnkey ACTIVE or NOT_SET; Last API "Nm ago"
// or NEVER. Minutes are whole, truncated. Without a session it returns
// "No active session". It contains no secret.
func (m *Manager) Summary() string {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return summary(m.sess, now)
}

func summary(s *AuthSession, now time.Time) string {
	if s == nil {
		return "No active session"
	}
	valid := "INVALID"
	if s.IsValid(now) {
		valid = "VALID"
	}
	tokens := "VALID"
	switch {
	case s.Tokens.IsExpired(now):
		tokens = "EXPIRED"
	case s.Tokens.NeedsRefresh(now):
		tokens = "NEEDS_REFRESH"
	}
	cookies := "MISSING"
	if s.HasValidCookies() {
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
