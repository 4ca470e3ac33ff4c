package session

import "time"

// Validity windows.
//
// The seed counts tokens as expired five minutes (ExpiryBuffer) before
// expires_at and due for a refresh fifteen minutes (RefreshBuffer)
// before. Those constants suit tokens that live an hour or more; a
// five-minute token would be expired on arrival, a three-second one due
// for a refresh on every request. So the default windows scale with the
// token's lifetime L, expires_at minus the time the tokens were stored
// (session_metadata.last_refreshed_at, or created_at for tokens never
// refreshed; both are in the file format):
//
//	expiry buffer  = min(ExpiryBuffer,  L/10)
//	refresh buffer = min(RefreshBuffer, L/4)
//
// Tokens that live an hour or more get the seed's windows exactly. A
// shorter token is due for a refresh after three quarters of its life and
// expired after nine tenths, so a fresh token is neither, and the
// refresh has 15% of the lifetime to succeed before any request has to
// wait for it. When L cannot be known (no expires_at, or an expires_at
// not after the stored time) the seed's windows apply.
//
// WithExpiryBuffer and WithRefreshBuffer replace the defaults with fixed
// values for every token.

// DefaultBuffers returns the default expiry and refresh buffers for
// tokens that live for lifetime (see the rule above); the seed's
// ExpiryBuffer and RefreshBuffer for a lifetime of zero or less.
func DefaultBuffers(lifetime time.Duration) (expiry, refresh time.Duration) {
	if lifetime <= 0 {
		return ExpiryBuffer, RefreshBuffer
	}
	return min(ExpiryBuffer, lifetime/expiryBufferDivisor), min(RefreshBuffer, lifetime/refreshBufferDivisor)
}

// TokenLifetime returns the lifetime of the session's tokens: expires_at
// minus when they were stored (last_refreshed_at, else created_at). It
// returns false when the tokens have no expires_at or expire no later than
// they were stored. It does not overflow: a lifetime past 292 years (what
// a time.Duration holds) is reported as the longest Duration.
func (s *AuthSession) TokenLifetime() (time.Duration, bool) {
	if s.Tokens.ExpiresAt == nil {
		return 0, false
	}
	stored := s.Metadata.CreatedAt
	if s.Metadata.LastRefreshedAt != nil {
		stored = *s.Metadata.LastRefreshedAt
	}
	if !s.Tokens.ExpiresAt.After(stored) {
		return 0, false
	}
	return s.Tokens.ExpiresAt.Sub(stored), true // Sub saturates
}

// windows holds the buffers a Manager was given; a nil field means the
// default, scaled to the lifetime of the tokens.
type windows struct {
	expiry, refresh *time.Duration
}

// buffers returns the expiry and refresh buffers for s.
func (w windows) buffers(s *AuthSession) (expiry, refresh time.Duration) {
	l, _ := s.TokenLifetime()
	expiry, refresh = DefaultBuffers(l)
	if w.expiry != nil {
		expiry = *w.expiry
	}
	if w.refresh != nil {
		refresh = *w.refresh
	}
	return expiry, refresh
}

// expired reports whether the tokens of s count as expired at now.
func (w windows) expired(s *AuthSession, now time.Time) bool {
	e, _ := w.buffers(s)
	return expiredWithin(s.Tokens.ExpiresAt, now, e)
}

// due reports whether the tokens of s need a refresh at now.
func (w windows) due(s *AuthSession, now time.Time) bool {
	_, r := w.buffers(s)
	return expiredWithin(s.Tokens.ExpiresAt, now, r)
}

// expiredWithin reports whether now is at or after exp minus buffer; an
// unset exp never expires.
func expiredWithin(exp *time.Time, now time.Time, buffer time.Duration) bool {
	return exp != nil && !now.Before(exp.Add(-buffer))
}

// hasCookies reports whether s carries every cookie in names
// (CookieAuthAccessToken and CookieAuthRefreshToken are the dedicated
// fields, others are looked up in the additional cookies).
func hasCookies(s *AuthSession, names []string) bool {
	for _, n := range names {
		switch n {
		case CookieAuthAccessToken:
			if s.Cookies.AuthAccessToken == nil {
				return false
			}
		case CookieAuthRefreshToken:
			if s.Cookies.AuthRefreshToken == nil {
				return false
			}
		case CookieGState:
			if s.Cookies.GState == nil {
				return false
			}
		default:
			if _, ok := s.Cookies.Additional[n]; !ok {
				return false
			}
		}
	}
	return true
}

// defaultRequiredCookies are the cookies the seed's has_valid_cookies
// requires.
var defaultRequiredCookies = []string{CookieAuthAccessToken, CookieAuthRefreshToken}
