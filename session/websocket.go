package session

import (
	"net/http"
	"net/url"
)

// WebSocketHeader returns the headers that authenticate a WebSocket
// handshake to rawURL: Authorization (Bearer access token), Cookie and
// User-Agent. Pass them as the dialer's handshake headers, e.g.
// websocket.DialOptions.HTTPHeader of github.com/coder/websocket.
//
// It refuses a URL that is not wss:// (nor, with WithInsecureLoopback,
// ws:// to loopback) with ErrInsecureURL, a host or port outside WithHosts, and
// an invalid session: ErrNotAuthenticated without a session or without
// both auth cookies, ErrTokenExpired when the tokens are expired. It does
// not refresh: call RefreshIfNeeded first.
//
// Credentials belong in these headers rather than in the URL: a URL is
// written to server and proxy access logs, shown in error messages (Go's
// *url.Error and most WebSocket libraries quote the URL), kept in
// histories and sent in Referer headers, while header values are not.
// WebSocketURLWithToken exists for servers that accept nothing else.
func (m *Manager) WebSocketHeader(rawURL string, opts ...TransportOption) (http.Header, error) {
	if _, err := m.webSocketCheck(rawURL, opts); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil, ErrNotAuthenticated
	}
	c := m.headersLocked()
	h := http.Header{}
	if c.bearer != "" {
		h.Set("Authorization", c.bearer)
	}
	if c.hasCookie {
		h.Set("Cookie", c.cookie)
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	return h, nil
}

// WebSocketURLWithToken returns rawURL with the access token added as the
// query parameter param (the seed's wss://...?token=...), after the same
// checks as WebSocketHeader.
//
// Avoid it where the server accepts headers: the token then sits in the
// URL, which servers and proxies log, error messages quote (redactURL in
// this package drops the query for that reason, but a dialer's own errors
// do not), and which is a Go string that cannot be wiped. Do not log the
// result or errors that contain it.
func (m *Manager) WebSocketURLWithToken(rawURL, param string, opts ...TransportOption) (string, error) {
	u, err := m.webSocketCheck(rawURL, opts)
	if err != nil {
		return "", err
	}
	var out string
	err = m.WithAccessToken(func(s Secret) error {
		q := u.Query()
		q.Set(param, string(s.Bytes()))
		u.RawQuery = q.Encode()
		out = u.String()
		return nil
	})
	return out, err
}

func (m *Manager) webSocketCheck(rawURL string, opts []TransportOption) (*url.URL, error) {
	var cfg transportConfig
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(&cfg)
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &URLError{URL: "(unparsable)", Reason: "invalid URL"}
	}
	if err := cfg.checkURL(u, "wss", "ws"); err != nil {
		return nil, err
	}
	if !cfg.hostAllowed(u.Scheme, u.Host) {
		return nil, &URLError{URL: redactURL(u), Reason: "host or port not in WithHosts"}
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.sess == nil:
		return nil, ErrNotAuthenticated
	case m.cfg.win.expired(m.sess, now):
		return nil, ErrTokenExpired
	case !hasCookies(m.sess, m.cfg.required):
		return nil, errMissingCookies
	}
	return u, nil
}

var errMissingCookies = &missingCookiesError{}

type missingCookiesError struct{}

func (*missingCookiesError) Error() string { return "session: not authenticated: auth cookies missing" }
func (*missingCookiesError) Unwrap() error { return ErrNotAuthenticated }
