package session

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Interop with golang.org/x/oauth2, the Go ecosystem's token abstraction.
//
// oauth2.Token keeps its tokens in Go strings, which cannot be wiped: every
// token that passes through these functions leaves an unwipeable copy in
// memory until the garbage collector reuses it (see SECURITY.md). The
// Manager's own copies stay in wipeable buffers.

// TokenSource returns an oauth2.TokenSource backed by the Manager: each
// Token is the session's access token (TokenType "Bearer", Expiry the
// tokens' expires_at; no RefreshToken, which stays in the Manager), and
// refreshes go through the Manager, so that new tokens are stored before
// they are used and one refresh runs per session across goroutines,
// processes and the fleet (see Refresh). As with a Transport, tokens due
// for a refresh but not expired are returned at once while a refresh runs
// in the background; expired tokens wait for a refresh; failures back off;
// a refresh token the server refused gives an error matching
// ErrReauthRequired. Background refresh failures are logged with the
// Manager's logger, once per attempt.
//
// ctx is handed to the RefreshFunc (with its values, e.g. oauth2.HTTPClient,
// but not its cancellation: a refresh serves every caller that joined it).
//
// oauth2.NewClient(ctx, m.TokenSource(ctx)) wraps the source in
// oauth2.ReuseTokenSource, which asks for a new token only ten seconds
// before Expiry: a refresh then happens when the Manager counts the
// tokens as expired, and the request waits for it. To keep refreshes in
// the background, use &oauth2.Transport{Source: m.TokenSource(ctx)} (which
// asks the source on every request; that costs a mutex) or NewTransport.
//
// The returned strings are shared by every Token of one access token (the
// Manager builds one per token change): they cannot be wiped.
func (m *Manager) TokenSource(ctx context.Context) oauth2.TokenSource {
	return &tokenSource{m: m, ctx: ctx}
}

type tokenSource struct {
	m   *Manager
	ctx context.Context
}

func (s *tokenSource) Token() (*oauth2.Token, error) {
	m := s.m
	if err := m.ready(s.ctx, m.logRefreshFailure); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil, ErrNotAuthenticated
	}
	bearer := m.headersLocked().bearer
	if bearer == "" {
		return nil, ErrTokenNotFound
	}
	t := &oauth2.Token{AccessToken: bearer[len("Bearer "):], TokenType: "Bearer"}
	if e := m.sess.Tokens.ExpiresAt; e != nil {
		t.Expiry = *e
	}
	return t, nil
}

// logRefreshFailure logs a background refresh failure with the Manager's
// logger: ErrReauthRequired at Warn, others at Error.
func (m *Manager) logRefreshFailure(err error) {
	if errors.Is(err, ErrReauthRequired) {
		m.cfg.logger.Warn("session: re-authentication required", "session", m.Name(), "err", err)
		return
	}
	m.cfg.logger.Error("session: refresh failed", "session", m.Name(), "err", err)
}

// AuthTokensFromOAuth2 returns the tokens of t, to start a session from
// the result of an OAuth 2 login (oauth2.Config.Exchange,
// PasswordCredentialsToken, a device flow):
//
//	tok, err := cfg.Exchange(ctx, code)
//	tokens := session.AuthTokensFromOAuth2(tok)
//	err = m.CreateSession(ctx, tokens, nil, nil)
//	tokens.Destroy()
//
// A zero Expiry means tokens that never expire. The strings of t cannot be
// wiped; drop t once the session is created.
func AuthTokensFromOAuth2(t *oauth2.Token) AuthTokens {
	if t == nil {
		return AuthTokens{}
	}
	var exp *time.Time
	if !t.Expiry.IsZero() {
		exp = &t.Expiry
	}
	return NewAuthTokens([]byte(t.AccessToken), []byte(t.RefreshToken), exp)
}

// OAuth2Refresher returns a RefreshFunc that refreshes through the token
// endpoint of cfg (cfg.Endpoint.TokenURL) with the refresh_token grant of
// RFC 6749 section 6, using cfg's client credentials and auth style. A
// server that issues no new refresh token leaves the current one in use;
// one that rotates it has the new one stored before it is used.
//
// A refusal of the refresh token (an "invalid_grant" error, or a 401 from
// the token endpoint) is an *OAuth2Error matching ErrUnauthorized, so the
// Manager reports ErrReauthRequired; any other failure (a transport error,
// a 5xx, a timeout) is transient and backed off. Errors carry the status
// and the OAuth error code only, never the response body, which might
// echo a token.
//
// The HTTP client is oauth2's: the one in ctx under oauth2.HTTPClient
// (the ctx given to the Manager's call, e.g. TokenSource's), else
// http.DefaultClient.
func OAuth2Refresher(cfg *oauth2.Config) RefreshFunc {
	if cfg == nil {
		panic("session: OAuth2Refresher with a nil Config")
	}
	return func(ctx context.Context, rt Secret) (AuthTokens, *AuthCookies, error) {
		old := string(rt.Bytes()) // x/oauth2 needs a string; it cannot be wiped
		t, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
		if err != nil {
			return AuthTokens{}, nil, oauth2Error(err)
		}
		if t.AccessToken == "" {
			return AuthTokens{}, nil, &OAuth2Error{Reason: "token response without access_token"}
		}
		return AuthTokensFromOAuth2(t), nil, nil
	}
}

// OAuth2Error reports a failed refresh at an OAuth 2 token endpoint. It
// matches ErrUnauthorized when the server refused the refresh token.
//
// A zero OAuth2Error is not a meaningful error: the package makes them.
type OAuth2Error struct {
	Status int    // HTTP status of the token response; 0 if none arrived
	Code   string // the OAuth "error" code (sanitized, at most 64 bytes), or ""
	Reason string // what went wrong when no response arrived, or a format error
	Err    error  // the transport error, if any
}

func (e *OAuth2Error) Error() string {
	msg := "session: oauth2 token endpoint"
	if e.Status != 0 {
		msg += ": status " + strconv.Itoa(e.Status)
	}
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Refused reports whether the server refused the refresh token.
func (e *OAuth2Error) Refused() bool {
	return e.Code == "invalid_grant" || e.Status == http.StatusUnauthorized
}

func (e *OAuth2Error) Unwrap() []error {
	var errs []error
	if e.Refused() {
		errs = append(errs, ErrUnauthorized)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// oauth2Error turns an error of x/oauth2 into an *OAuth2Error that holds
// no response body.
func oauth2Error(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &OAuth2Error{Code: sanitizeCode(re.ErrorCode)}
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		if e.Status == 0 && e.Code == "" {
			e.Reason = "no usable response"
		}
		return e
	}
	// A transport error (*url.Error: the token URL, which holds no
	// secret, and the cause) or a context error.
	return &OAuth2Error{Err: err}
}

// sanitizeCode keeps an OAuth error code printable and short: a hostile
// server chooses it.
func sanitizeCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxOAuth2CodeLen; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
