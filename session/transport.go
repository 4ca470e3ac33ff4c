package session

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// TransportOption configures a Transport and the WebSocket helpers.
//
// A nil TransportOption is ignored.
type TransportOption func(*transportConfig)

type transportConfig struct {
	hosts         map[hostPort]bool // nil: any host
	anyPort       bool
	loopbackPlain bool
	onError       func(error)
}

// hostPort is an allowed host and port; port "" stands for the default
// port of the request's scheme (443 for https and wss, 80 for http and
// ws).
type hostPort struct{ host, port string }

// WithHosts limits credentials to requests for these hosts, compared
// case-insensitively, host and port: "api.axiom.trade" allows that host on
// the scheme's default port only (443 for https), "api.axiom.trade:8443"
// that port only (add both to allow both); a literal IPv6 address is
// written "::1" or "[::1]:8443". WithAnyPort makes the entries without a
// port match every port. Requests to other hosts or ports pass through
// the Transport untouched: no credentials, no cookie merge; so does a
// request whose Host field (the Host header net/http sends) names a host
// or port outside the list, since the server would route it by that
// name. Without WithHosts, every https host gets the session's
// credentials, so set it whenever the client may be sent elsewhere
// (links in responses, redirects).
func WithHosts(hosts ...string) TransportOption {
	return func(c *transportConfig) {
		if c.hosts == nil {
			c.hosts = map[hostPort]bool{}
		}
		for _, h := range hosts {
			c.hosts[parseHostPort(h)] = true
		}
	}
}

// WithAnyPort makes the WithHosts entries that name no port match every
// port of their host, not only the scheme's default: for servers whose
// port is not known in advance (tests on a random loopback port). Any
// service on another port of that host then gets the credentials too.
func WithAnyPort() TransportOption {
	return func(c *transportConfig) { c.anyPort = true }
}

// parseHostPort reads a WithHosts entry: "host", "host:port", "[v6]:port",
// "[v6]" or a bare IPv6 address.
func parseHostPort(s string) hostPort {
	s = strings.ToLower(strings.TrimSpace(s))
	if h, p, err := net.SplitHostPort(s); err == nil {
		return hostPort{h, p}
	}
	return hostPort{host: strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")}
}

// defaultPort is the port a URL of scheme uses when it names none.
func defaultPort(scheme string) string {
	switch strings.ToLower(scheme) {
	case "https", "wss":
		return "443"
	case "http", "ws":
		return "80"
	}
	return ""
}

// target returns the host and port a request for authority (a URL's Host
// or a request's Host field) of scheme reaches, the port filled in.
func target(scheme, authority string) hostPort {
	u := url.URL{Host: authority}
	hp := hostPort{host: strings.ToLower(u.Hostname()), port: u.Port()}
	if hp.port == "" {
		hp.port = defaultPort(scheme)
	}
	return hp
}

// WithInsecureLoopback also allows http:// (and ws://) to loopback
// addresses (127.0.0.0/8, ::1, "localhost"), for tests and local
// development. Traffic on the loopback interface does not leave the
// machine, but any local process may be listening on that port.
func WithInsecureLoopback() TransportOption {
	return func(c *transportConfig) { c.loopbackPlain = true }
}

// WithErrorHandler sets a function for errors a RoundTrip cannot return
// because it has a response to return: a refresh that succeeded but could
// not be saved (ErrNotSaved), a background refresh that failed while the
// tokens were still usable (once per attempt: a refresh held back by the
// backoff is not reported again), Set-Cookie values that could not be
// saved. It may be called from a background goroutine. The default logs
// them with the Manager's logger: ErrReauthRequired at Warn, others at
// Error.
func WithErrorHandler(f func(error)) TransportOption {
	return func(c *transportConfig) { c.onError = f }
}

// Transport is an http.RoundTripper that authenticates requests with a
// Manager's session. For each request to an allowed host it:
//
//   - refuses anything but https:// (and, with WithInsecureLoopback,
//     http:// to loopback) with an error matching ErrInsecureURL, before
//     any byte is sent;
//   - when the tokens are due for a refresh (NeedsRefresh) but not
//     expired, starts one refresh in the background and sends the request
//     with the current tokens: no request waits for a refresh while the
//     tokens are usable; only a request whose tokens are expired waits
//     (one refresh however many requests ask). Failed refreshes back off
//     (see Manager.Refresh) and are reported once per attempt, never once
//     per request; a request whose tokens are expired during the backoff
//     fails at once with an error matching ErrTokenExpired;
//   - fails a request with an error matching ErrReauthRequired when the
//     server refused the refresh token it waited for (after a 401 or with
//     expired tokens), and every request after that until a new session
//     is created;
//   - adds Authorization: Bearer <access token>, the session's cookies
//     (after any Cookie header of the request) and its User-Agent (unless
//     the request has one);
//   - after a 401, refreshes (one refresh for all the requests refused
//     with the same tokens) and retries the request once if it is
//     idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or with an
//     Idempotency-Key) and its body can be replayed (GetBody); other
//     requests get the 401, and the caller's retry the new tokens;
//   - merges the response's Set-Cookie headers into the session (durable
//     when RoundTrip returns, except while this Manager's refresh is in
//     progress: then they are written when it ends, so that the response
//     does not wait for it) and marks an API call to the host.
//
// A request created by a redirect to another host gets no credentials.
// The Authorization and Cookie header values are Go strings handed to
// net/http, which cannot be wiped (see SECURITY.md).
//
// The zero value is not usable: call NewTransport.
type Transport struct {
	m    *Manager
	base http.RoundTripper
	cfg  transportConfig
}

// NewTransport returns a Transport over base (http.DefaultTransport when
// nil) for the session of m.
func NewTransport(m *Manager, base http.RoundTripper, opts ...TransportOption) *Transport {
	if m == nil {
		panic("session: NewTransport with a nil Manager")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	t := &Transport{m: m, base: base}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(&t.cfg)
		}
	}
	return t
}

func (t *Transport) report(err error) {
	if t.cfg.onError != nil {
		t.cfg.onError(err)
		return
	}
	if errors.Is(err, ErrReauthRequired) {
		t.m.cfg.logger.Warn("session: transport: re-authentication required", "session", t.m.Name(), "err", err)
		return
	}
	t.m.cfg.logger.Error("session: transport", "session", t.m.Name(), "err", err)
}

// reportRefresh reports a refresh failure, unless it is a refresh the
// backoff held back: that failure was reported when it happened, and a
// report per request would be a log line per request during an outage.
func (t *Transport) reportRefresh(err error) {
	if !heldBack(err) {
		t.report(err)
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if req.URL == nil {
		return fail(errors.New("session: request without URL"))
	}
	if err := t.cfg.checkURL(req.URL, "https", "http"); err != nil {
		return fail(err)
	}
	if !t.cfg.requestAllowed(req) || crossHostRedirect(req) {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	inRefresh := isRefreshing(ctx, t.m)
	canRefresh := t.m.cfg.refresher != nil && !inRefresh

	if canRefresh {
		if err := t.m.ready(ctx, t.report); err != nil {
			return fail(err)
		}
	}

	out, gen, err := t.authorize(req)
	if err != nil {
		return fail(err)
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized && canRefresh {
		// The server refused tokens our clock thinks valid: refresh
		// (once for every request refused with the same tokens), then
		// retry this request once if it can be replayed.
		rerr := t.m.refreshFrom(ctx, gen, true)
		if errors.Is(rerr, ErrReauthRequired) {
			t.report(rerr)
			drain(resp)
			return nil, rerr
		}
		if rerr != nil {
			t.reportRefresh(rerr)
		}
		if (rerr == nil || errors.Is(rerr, ErrNotSaved)) && replayable(req) {
			if retried, err := t.retry(req); err != nil {
				t.report(err)
			} else {
				drain(resp)
				resp, err = t.base.RoundTrip(retried)
				if err != nil {
					return nil, err
				}
			}
		}
	}
	t.absorb(req, resp, inRefresh)
	return resp, nil
}

// authorize returns a clone of req carrying the session's credentials and
// the generation of the tokens it used.
func (t *Transport) authorize(req *http.Request) (*http.Request, uint64, error) {
	m := t.m
	m.mu.Lock()
	if m.sess == nil {
		m.mu.Unlock()
		return nil, 0, ErrNotAuthenticated
	}
	gen := m.tokenGen
	h := m.headersLocked()
	bearer, cookies, hasCookies, ua := h.bearer, h.cookie, h.hasCookie, h.userAgent
	m.mu.Unlock()

	out := req.Clone(req.Context())
	if bearer != "" {
		out.Header.Set("Authorization", bearer)
	}
	if hasCookies {
		if prev := out.Header.Get("Cookie"); prev != "" {
			cookies = prev + "; " + cookies
		}
		out.Header.Set("Cookie", cookies)
	}
	if ua != "" && out.Header.Get("User-Agent") == "" {
		out.Header.Set("User-Agent", ua)
	}
	return out, gen, nil
}

// headerCache holds the header values built from the session, so that
// every request reuses one string per credential instead of making a new
// unwipeable copy of the token each time. Any change to the session
// resets it.
type headerCache struct {
	valid     bool
	bearer    string
	cookie    string
	hasCookie bool
	userAgent string
}

// headersLocked returns the header values for the session; mu is held and
// sess is not nil.
func (m *Manager) headersLocked() headerCache {
	if !m.hdr.valid {
		c, ok := cookieHeader(&m.sess.Cookies)
		m.hdr = headerCache{
			valid:     true,
			bearer:    bearerHeader(m.sess.Tokens.AccessToken),
			cookie:    c,
			hasCookie: ok,
			userAgent: m.sess.Metadata.UserAgent,
		}
	}
	return m.hdr
}

// bearerHeader builds "Bearer <token>" in a buffer it wipes, so the only
// copy left is the string net/http needs.
func bearerHeader(tok Secret) string {
	b := tok.bytes()
	if len(b) == 0 || !validHeaderValue(b) {
		return ""
	}
	buf := make([]byte, 0, len("Bearer ")+len(b))
	buf = append(buf, "Bearer "...)
	buf = append(buf, b...)
	s := string(buf)
	wipe(buf)
	return s
}

func validHeaderValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// absorb merges the response's cookies and marks the API call.
func (t *Transport) absorb(req *http.Request, resp *http.Response, inRefresh bool) {
	if _, ok := resp.Header["Set-Cookie"]; ok && !inRefresh {
		c := ParseSetCookies(resp.Header)
		if !c.IsEmpty() {
			if err := t.m.absorbCookies(req.Context(), c); err != nil && !errors.Is(err, ErrNotAuthenticated) {
				t.report(err)
			}
		}
		c.Destroy()
	}
	t.m.MarkAPICall(req.URL.Host)
}

// replayable reports whether req may be sent a second time: an idempotent
// method (or an Idempotency-Key) and a body that can be produced again.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// retry returns req with a fresh body and the current credentials.
func (t *Transport) retry(req *http.Request) (*http.Request, error) {
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r := *req
		r.Body = body
		req = &r
	}
	out, _, err := t.authorize(req)
	return out, err
}

// drain reads a little of a response that is dropped, so that its
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
}

// crossHostRedirect reports whether req follows a redirect from another
// host or port: credentials meant for the first must not follow it.
func crossHostRedirect(req *http.Request) bool {
	prev := req.Response
	if prev == nil || prev.Request == nil || prev.Request.URL == nil {
		return false
	}
	return target(prev.Request.URL.Scheme, prev.Request.URL.Host) != target(req.URL.Scheme, req.URL.Host)
}

// hostAllowed reports whether credentials may go to authority (host and
// optional port) under scheme.
func (c *transportConfig) hostAllowed(scheme, authority string) bool {
	if c.hosts == nil {
		return true
	}
	t := target(scheme, authority)
	if c.hosts[t] {
		return true
	}
	bare := c.hosts[hostPort{host: t.host}]
	return bare && (c.anyPort || t.port == defaultPort(scheme))
}

// requestAllowed reports whether req may carry credentials: its URL's
// host and port, and the Host field net/http sends instead when it is
// set, are all allowed.
func (c *transportConfig) requestAllowed(req *http.Request) bool {
	if !c.hostAllowed(req.URL.Scheme, req.URL.Host) {
		return false
	}
	return req.Host == "" || c.hostAllowed(req.URL.Scheme, req.Host)
}

// checkURL accepts the secure scheme, and the plain one only to loopback
// when allowed.
func (c *transportConfig) checkURL(u *url.URL, secure, plain string) error {
	switch strings.ToLower(u.Scheme) {
	case secure:
		return nil
	case plain:
		if c.loopbackPlain && isLoopback(u.Hostname()) {
			return nil
		}
		reason := "plain " + plain
		if isLoopback(u.Hostname()) {
			reason += " (loopback needs WithInsecureLoopback)"
		}
		return &URLError{URL: redactURL(u), Reason: reason}
	}
	return &URLError{URL: redactURL(u), Reason: "scheme is not " + secure}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// redactURL drops the user information, query and fragment, which may hold
// secrets, from a URL shown in an error.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}
