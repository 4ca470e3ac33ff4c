package session

import (
	"maps"
	"slices"
	"time"
)

// Cookie names the seed treats specially.
const (
	CookieAuthAccessToken  = "auth-access-token"
	CookieAuthRefreshToken = "auth-refresh-token"
	CookieGState           = "g_state"
)

// AuthSession is the whole authentication state of one login: JWT tokens,
// auth cookies, an optional Turnkey wallet session, optional user
// information, and usage metadata. Its JSON form (MarshalPlaintext,
// ParseSession) is the file axiomtrade-rs writes.
//
// An AuthSession owns the buffers of its Secrets: Destroy wipes them.
//
// The zero value is usable: an empty session (empty tokens, no cookies,
// no Turnkey session, no user information), which IsValid reports as not
// valid.
type AuthSession struct {
	Tokens         AuthTokens      // "tokens"
	Cookies        AuthCookies     // "cookies"
	TurnkeySession *TurnkeySession // "turnkey_session", null when nil
	UserInfo       *UserInfo       // "user_info", null when nil
	Metadata       SessionMetadata // "session_metadata"

	extra *members // members this package does not know, kept (unknown.go)
}

// AuthTokens are the JWT access and refresh tokens of a session.
//
// The zero value is usable: empty tokens that never expire (NewAuthTokens
// makes real ones).
type AuthTokens struct {
	AccessToken  Secret     // "access_token"
	RefreshToken Secret     // "refresh_token"
	ExpiresAt    *time.Time // "expires_at", null (never expires) when nil

	extra *members
}

// AuthCookies are the HTTP cookies of a session.
//
// The zero value is usable: no cookies.
type AuthCookies struct {
	AuthAccessToken  *Secret           // "auth_access_token", null when nil
	AuthRefreshToken *Secret           // "auth_refresh_token", null when nil
	GState           *string           // "g_state", null when nil
	Additional       map[string]Secret // "additional_cookies", {} when empty

	// Deleted names cookies that a server expired (Max-Age <= 0 or an
	// Expires in the past). Merging removes them. It is never serialized.
	Deleted []string

	extra *members
}

// TurnkeySession is a Turnkey wallet session.
//
// The zero value is usable: an empty Turnkey session that never expires.
type TurnkeySession struct {
	OrganizationID string          // "organization_id"
	UserID         string          // "user_id"
	Username       string          // "username"
	ClientSecret   Secret          // "client_secret"
	APIKeys        []TurnkeyAPIKey // "api_keys", [] when empty
	CreatedAt      time.Time       // "created_at"
	ExpiresAt      *time.Time      // "expires_at", null when nil

	extra *members
}

// TurnkeyAPIKey describes one Turnkey API key (axiomtrade-rs
// TurnkeyApiKey). It holds only public parts.
//
// The zero value is usable: an empty description.
type TurnkeyAPIKey struct {
	APIKeyID   string     // "api_key_id"
	APIKeyName string     // "api_key_name"
	PublicKey  string     // "public_key"
	KeyType    string     // "key_type"
	CreatedAt  time.Time  // "created_at"
	ExpiresAt  *time.Time // "expires_at", null when nil

	extra *members
}

// TurnkeyApiKey is TurnkeyAPIKey under the name axiomtrade-rs gives it,
// so that code ported from that library, or written against that name,
// compiles. It is an alias: both names denote one type. Go code should
// prefer TurnkeyAPIKey.
type TurnkeyApiKey = TurnkeyAPIKey

// SessionMetadata records when a session was made, refreshed and used.
//
// The zero value is usable: nothing recorded yet (a zero CreatedAt).
type SessionMetadata struct {
	CreatedAt         time.Time  // "created_at"
	LastRefreshedAt   *time.Time // "last_refreshed_at"
	LastAPICallAt     *time.Time // "last_api_call_at"
	CurrentAPIServer  *string    // "current_api_server"
	UserAgent         string     // "user_agent"
	IPAddress         *string    // "ip_address"
	ClientFingerprint *string    // "client_fingerprint"

	extra *members
}

// UserInfo is what the login endpoint says about the user. Every field is
// optional.
//
// The zero value is usable: nothing known about the user.
type UserInfo struct {
	ID       *string // "id"
	Email    *string // "email"
	Username *string // "username"

	extra *members
}

// TurnkeyCredentials are the Turnkey credentials returned by a login.
//
// The zero value is usable: empty credentials.
type TurnkeyCredentials struct {
	OrganizationID string
	UserID         string
	ClientSecret   Secret
}

// LoginResult is the complete result of a login: tokens, optional Turnkey
// credentials and optional user information. It is never serialized.
//
// The zero value is usable: empty tokens and nothing else.
type LoginResult struct {
	Tokens             AuthTokens
	TurnkeyCredentials *TurnkeyCredentials
	UserInfo           *UserInfo
}

// NewAuthTokens returns tokens holding copies of access and refresh; the
// caller still owns (and should wipe) its slices. A nil expiresAt means the
// tokens never expire.
func NewAuthTokens(access, refresh []byte, expiresAt *time.Time) AuthTokens {
	var t AuthTokens
	t.AccessToken, t.RefreshToken = newSecretPair(access, refresh)
	if expiresAt != nil {
		e := expiresAt.UTC()
		t.ExpiresAt = &e
	}
	return t
}

// IsExpired reports whether the tokens count as expired at now: at or
// after five minutes (ExpiryBuffer) before expires_at. Tokens without an
// expiry never expire.
func (t AuthTokens) IsExpired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(t.ExpiresAt.Add(-ExpiryBuffer))
}

// NeedsRefresh reports whether the tokens should be refreshed at now: at
// or after fifteen minutes (RefreshBuffer) before expires_at. Tokens
// without an expiry never need a refresh.
func (t AuthTokens) NeedsRefresh(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(t.ExpiresAt.Add(-RefreshBuffer))
}

// Clone returns a deep copy of t.
func (t AuthTokens) Clone() AuthTokens {
	c := AuthTokens{ExpiresAt: cloneTime(t.ExpiresAt), extra: t.extra.clone()}
	c.AccessToken, c.RefreshToken = newSecretPair(t.AccessToken.bytes(), t.RefreshToken.bytes())
	return c
}

// Destroy wipes both tokens.
func (t *AuthTokens) Destroy() {
	if t == nil {
		return
	}
	t.AccessToken.Destroy()
	t.RefreshToken.Destroy()
	t.extra.destroy()
}

// DefaultAuthCookies returns the cookies of a new session as the seed
// makes them: no auth cookies and g_state {"i_l":0}.
func DefaultAuthCookies() AuthCookies {
	return AuthCookies{GState: ptr(defaultGState), Additional: map[string]Secret{}}
}

// HasAuthCookies reports whether both auth cookies are present.
func (c AuthCookies) HasAuthCookies() bool {
	return c.AuthAccessToken != nil && c.AuthRefreshToken != nil
}

// IsEmpty reports whether c sets and deletes nothing.
func (c AuthCookies) IsEmpty() bool {
	return c.AuthAccessToken == nil && c.AuthRefreshToken == nil && c.GState == nil &&
		len(c.Additional) == 0 && len(c.Deleted) == 0
}

// Clone returns a deep copy of c.
func (c AuthCookies) Clone() AuthCookies {
	out := AuthCookies{
		AuthAccessToken:  cloneOpt(c.AuthAccessToken),
		AuthRefreshToken: cloneOpt(c.AuthRefreshToken),
		GState:           cloneStr(c.GState),
		Additional:       make(map[string]Secret, len(c.Additional)),
		Deleted:          slices.Clone(c.Deleted),
		extra:            c.extra.clone(),
	}
	for k, v := range c.Additional {
		out.Additional[k] = v.Clone()
	}
	return out
}

// Destroy wipes every cookie value.
func (c *AuthCookies) Destroy() {
	if c == nil {
		return
	}
	c.AuthAccessToken.Destroy()
	c.AuthRefreshToken.Destroy()
	c.AuthAccessToken, c.AuthRefreshToken = nil, nil
	for k, v := range c.Additional {
		v.Destroy()
		delete(c.Additional, k)
	}
	c.extra.destroy()
}

// Merge applies other to c, as the seed's merge_with does, with its bugs
// fixed: a cookie present in other replaces c's, a cookie absent from
// other is kept (so an absent g_state no longer resets c's), and cookies
// that other marks as deleted are removed. Merge copies what it takes;
// other is unchanged. It reports whether c changed.
func (c *AuthCookies) Merge(other AuthCookies) (changed bool) {
	if c.Additional == nil {
		c.Additional = map[string]Secret{}
	}
	for _, name := range other.Deleted {
		switch name {
		case CookieAuthAccessToken:
			changed = changed || c.AuthAccessToken != nil
			c.AuthAccessToken.Destroy()
			c.AuthAccessToken = nil
		case CookieAuthRefreshToken:
			changed = changed || c.AuthRefreshToken != nil
			c.AuthRefreshToken.Destroy()
			c.AuthRefreshToken = nil
		case CookieGState:
			changed = changed || c.GState != nil
			c.GState = nil
		default:
			if v, ok := c.Additional[name]; ok {
				v.Destroy()
				delete(c.Additional, name)
				changed = true
			}
		}
	}
	setOpt := func(dst **Secret, src *Secret) {
		if src == nil {
			return
		}
		if *dst != nil && (*dst).Equal(*src) {
			return
		}
		(*dst).Destroy()
		*dst = cloneOpt(src)
		changed = true
	}
	setOpt(&c.AuthAccessToken, other.AuthAccessToken)
	setOpt(&c.AuthRefreshToken, other.AuthRefreshToken)
	if other.GState != nil && (c.GState == nil || *c.GState != *other.GState) {
		c.GState = cloneStr(other.GState)
		changed = true
	}
	for k, v := range other.Additional {
		if old, ok := c.Additional[k]; ok {
			if old.Equal(v) {
				continue
			}
			old.Destroy()
		}
		c.Additional[k] = v.Clone()
		changed = true
	}
	return changed
}

// mergedView returns the cookies that c.Merge(other) would leave, without
// changing c: a shallow view that shares the buffers of c and other, for
// measuring the session an update would make. It must not be destroyed
// or kept.
func (c AuthCookies) mergedView(other AuthCookies) AuthCookies {
	v := AuthCookies{
		AuthAccessToken:  c.AuthAccessToken,
		AuthRefreshToken: c.AuthRefreshToken,
		GState:           c.GState,
		Additional:       make(map[string]Secret, len(c.Additional)+len(other.Additional)),
		extra:            c.extra,
	}
	maps.Copy(v.Additional, c.Additional)
	for _, name := range other.Deleted {
		switch name {
		case CookieAuthAccessToken:
			v.AuthAccessToken = nil
		case CookieAuthRefreshToken:
			v.AuthRefreshToken = nil
		case CookieGState:
			v.GState = nil
		default:
			delete(v.Additional, name)
		}
	}
	if other.AuthAccessToken != nil {
		v.AuthAccessToken = other.AuthAccessToken
	}
	if other.AuthRefreshToken != nil {
		v.AuthRefreshToken = other.AuthRefreshToken
	}
	if other.GState != nil {
		v.GState = other.GState
	}
	maps.Copy(v.Additional, other.Additional)
	return v
}

// Clone returns a deep copy of t (nil for nil).
func (t *TurnkeySession) Clone() *TurnkeySession {
	if t == nil {
		return nil
	}
	out := *t
	out.ClientSecret = t.ClientSecret.Clone()
	out.extra = t.extra.clone()
	out.APIKeys = make([]TurnkeyAPIKey, len(t.APIKeys))
	for i, k := range t.APIKeys {
		k.ExpiresAt = cloneTime(k.ExpiresAt)
		k.extra = k.extra.clone()
		out.APIKeys[i] = k
	}
	out.ExpiresAt = cloneTime(t.ExpiresAt)
	return &out
}

// Destroy wipes the client secret (and members this package does not
// know, which may be secrets).
func (t *TurnkeySession) Destroy() {
	if t == nil {
		return
	}
	t.ClientSecret.Destroy()
	t.extra.destroy()
	for i := range t.APIKeys {
		t.APIKeys[i].extra.destroy()
	}
}

// NeedsRefresh reports whether the Turnkey session should be refreshed at
// now: at or after one hour (TurnkeyRefreshBuffer) before its expiry. A
// session without expiry never needs one.
func (t *TurnkeySession) NeedsRefresh(now time.Time) bool {
	return t != nil && t.ExpiresAt != nil && !now.Before(t.ExpiresAt.Add(-TurnkeyRefreshBuffer))
}

// Destroy wipes the client secret.
func (c *TurnkeyCredentials) Destroy() {
	if c == nil {
		return
	}
	c.ClientSecret.Destroy()
}

// Destroy wipes the tokens and the Turnkey client secret.
func (r *LoginResult) Destroy() {
	if r == nil {
		return
	}
	r.Tokens.Destroy()
	r.TurnkeyCredentials.Destroy()
}

// Clone returns a deep copy of u (nil for nil).
func (u *UserInfo) Clone() *UserInfo {
	if u == nil {
		return nil
	}
	return &UserInfo{ID: cloneStr(u.ID), Email: cloneStr(u.Email), Username: cloneStr(u.Username), extra: u.extra.clone()}
}

// Clone returns a deep copy of m.
func (m SessionMetadata) Clone() SessionMetadata {
	m.LastRefreshedAt = cloneTime(m.LastRefreshedAt)
	m.LastAPICallAt = cloneTime(m.LastAPICallAt)
	m.CurrentAPIServer = cloneStr(m.CurrentAPIServer)
	m.IPAddress = cloneStr(m.IPAddress)
	m.ClientFingerprint = cloneStr(m.ClientFingerprint)
	m.extra = m.extra.clone()
	return m
}

// Age returns how long ago the session was created. A time.Duration
// holds at most 292 years: Age saturates beyond (AgeMinutes does not).
func (m SessionMetadata) Age(now time.Time) time.Duration { return now.Sub(m.CreatedAt) }

// AgeMinutes is the seed's session_age_minutes: whole minutes since
// creation, truncated toward zero (negative for a creation time in the
// future). It is exact for any two times of years 0000-9999, where
// now.Sub would overflow a time.Duration past 292 years.
func (m SessionMetadata) AgeMinutes(now time.Time) int64 { return minutesBetween(m.CreatedAt, now) }

// MinutesSinceLastAPICall is the seed's minutes_since_last_api_call: whole
// minutes since the last API call, truncated toward zero, exact as
// AgeMinutes is; false if none.
func (m SessionMetadata) MinutesSinceLastAPICall(now time.Time) (int64, bool) {
	if m.LastAPICallAt == nil {
		return 0, false
	}
	return minutesBetween(*m.LastAPICallAt, now), true
}

// minutesBetween returns the whole minutes from a to b, truncated toward
// zero, without going through time.Duration (which overflows past 292
// years): seconds since 1970 fit an int64 for any year.
func minutesBetween(a, b time.Time) int64 {
	sec := b.Unix() - a.Unix()
	ns := int64(b.Nanosecond() - a.Nanosecond())
	switch {
	case sec > 0 && ns < 0:
		sec--
	case sec < 0 && ns > 0:
		sec++
	}
	return sec / 60
}

// HasValidCookies reports whether both auth cookies are present.
func (s *AuthSession) HasValidCookies() bool { return s.Cookies.HasAuthCookies() }

// IsValid reports whether the session is usable at now: tokens not
// expired and both auth cookies present (the seed's is_valid), with the
// expiry buffer scaled to the tokens' lifetime (DefaultBuffers) rather
// than the seed's fixed five minutes, which would make a fresh
// five-minute token expired on arrival.
func (s *AuthSession) IsValid(now time.Time) bool {
	return !windows{}.expired(s, now) && hasCookies(s, defaultRequiredCookies)
}

// TokensExpired reports whether the tokens count as expired at now with
// the default expiry buffer for their lifetime (DefaultBuffers).
func (s *AuthSession) TokensExpired(now time.Time) bool { return windows{}.expired(s, now) }

// TokensNeedRefresh reports whether the tokens are due for a refresh at
// now with the default refresh buffer for their lifetime (DefaultBuffers).
func (s *AuthSession) TokensNeedRefresh(now time.Time) bool { return windows{}.due(s, now) }

// NeedsRefresh reports whether the tokens (TokensNeedRefresh) or the
// Turnkey session need a refresh at now: the seed's needs_refresh. A
// RefreshFunc renews only the tokens, so a refresh loop should ask
// TokensNeedRefresh (or Manager.NeedsRefresh) instead.
func (s *AuthSession) NeedsRefresh(now time.Time) bool {
	return s.TokensNeedRefresh(now) || s.TurnkeySession.NeedsRefresh(now)
}

// Clone returns a deep copy of s (nil for nil); destroy it separately.
func (s *AuthSession) Clone() *AuthSession {
	if s == nil {
		return nil
	}
	return &AuthSession{
		Tokens:         s.Tokens.Clone(),
		Cookies:        s.Cookies.Clone(),
		TurnkeySession: s.TurnkeySession.Clone(),
		UserInfo:       s.UserInfo.Clone(),
		Metadata:       s.Metadata.Clone(),
		extra:          s.extra.clone(),
	}
}

// Destroy wipes every secret of s: tokens, cookie values and the Turnkey
// client secret. It is safe on nil.
func (s *AuthSession) Destroy() {
	if s == nil {
		return
	}
	s.Tokens.Destroy()
	s.Cookies.Destroy()
	s.TurnkeySession.Destroy()
	s.Metadata.extra.destroy()
	if s.UserInfo != nil {
		s.UserInfo.extra.destroy()
	}
	s.extra.destroy()
}

// newSession builds the session the seed's AuthSession::new builds, from
// copies of tokens, user info and cookies.
func newSession(tokens AuthTokens, user *UserInfo, cookies *AuthCookies, now time.Time, userAgent string) *AuthSession {
	s := &AuthSession{
		Tokens:   tokens.Clone(),
		UserInfo: user.Clone(),
		Metadata: SessionMetadata{CreatedAt: now.UTC(), UserAgent: userAgent},
	}
	if cookies != nil {
		s.Cookies = cookies.Clone()
		s.Cookies.Deleted = nil
	} else {
		s.Cookies = DefaultAuthCookies()
	}
	return s
}

// turnkeyFromCredentials builds the Turnkey session the seed derives from
// login credentials, without its panic on a user id shorter than eight
// bytes (or one whose eighth byte is inside a UTF-8 sequence).
func turnkeyFromCredentials(c *TurnkeyCredentials, now time.Time) *TurnkeySession {
	exp := now.UTC().Add(TurnkeyLifetime)
	return &TurnkeySession{
		OrganizationID: c.OrganizationID,
		UserID:         c.UserID,
		Username:       "user_" + prefixRunes(c.UserID, turnkeyUsernamePrefixLen),
		ClientSecret:   c.ClientSecret.Clone(),
		APIKeys:        []TurnkeyAPIKey{},
		CreatedAt:      now.UTC(),
		ExpiresAt:      &exp,
	}
}

// prefixRunes returns the first n characters of s, or all of s.
func prefixRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func cloneStr(p *string) *string {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

func cloneTime(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

// sortedKeys returns the keys of m in byte order, so that the JSON form of
// a session is deterministic.
func sortedKeys(m map[string]Secret) []string {
	return appendSortedKeys(nil, m)
}

// appendSortedKeys appends the keys of m to dst, sorted as sortedKeys
// sorts them, so that a caller can sort into a buffer of its own.
func appendSortedKeys(dst []string, m map[string]Secret) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}
