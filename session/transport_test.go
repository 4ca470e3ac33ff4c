package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// apiServer is a local TLS API that requires the bearer token and the auth
// cookie of the current tokens, like the remote API would.
type apiServer struct {
	*httptest.Server
	auth    *authServer
	mu      sync.Mutex
	seen    []http.Header
	setCook string // a Set-Cookie to send on every response
}

func newAPIServer(t *testing.T, auth *authServer, tls bool) *apiServer {
	a := &apiServer{auth: auth}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.Header.Clone())
		setCook := a.setCook
		a.mu.Unlock()
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
		}
		auth.mu.Lock()
		want := fmt.Sprintf("Bearer a%d", auth.n)
		auth.mu.Unlock()
		if r.Header.Get("Authorization") != want {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if setCook != "" {
			w.Header().Add("Set-Cookie", setCook)
		}
		io.WriteString(w, "ok")
	})
	a.Server = quietServer(h, tls)
	t.Cleanup(a.Close)
	return a
}

// quietServer starts an httptest server whose log of client-side
// connection aborts (a dial raced and dropped by http.Transport) is
// discarded.
func quietServer(h http.Handler, tls bool) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	return s
}

func (a *apiServer) headers() []http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]http.Header(nil), a.seen...)
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestTransportAttachesAndMerges(t *testing.T) {
	st, auth, _, ms := setupRefresh(t, 1)
	m := ms[0]
	if err := m.Refresh(ctxT(t)); err != nil { // a1, fresh
		t.Fatal(err)
	}
	srv := newAPIServer(t, auth, true)
	srv.setCook = "srv_cookie=x=y=; Path=/; Secure; HttpOnly"
	c := &http.Client{Transport: NewTransport(m, srv.Client().Transport, WithHosts(strings.TrimPrefix(srv.URL, "https://")))}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, srv.URL+"/v1", nil)
	req.Header.Set("Cookie", "mine=1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := srv.headers()[0]
	if got := h.Get("Cookie"); got != `mine=1; g_state={"i_l":0}; auth-refresh-token=cr0; auth-access-token=ca1` {
		t.Errorf("Cookie = %q", got)
	}
	if h.Get("User-Agent") != DefaultUserAgent {
		t.Errorf("User-Agent = %q", h.Get("User-Agent"))
	}
	if req.Header.Get("Authorization") != "" || req.Header.Get("Cookie") != "mine=1" {
		t.Error("the caller's request was modified")
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "merged Set-Cookie", s.Cookies.Additional["srv_cookie"], "x=y=")
	md, _ := m.Metadata()
	if md.LastAPICallAt == nil || *md.CurrentAPIServer != strings.TrimPrefix(srv.URL, "https://") {
		t.Errorf("API call not marked: %v", md.CurrentAPIServer)
	}
}

// countingRT wraps a real RoundTripper and counts the requests it sends.
type countingRT struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func TestTransportRefusesInsecure(t *testing.T) {
	_, auth, _, ms := setupRefresh(t, 1)
	m := ms[0]
	m.Refresh(ctxT(t))
	plain := newAPIServer(t, auth, false)
	base := &countingRT{base: http.DefaultTransport}
	c := &http.Client{Transport: NewTransport(m, base)}
	for _, u := range []string{"http://example.com/x?token=SECRETQ", "http://user:pw@10.0.0.1/", plain.URL + "/x", "ftp://example.com/"} {
		_, err := get(t, c, u)
		if !errors.Is(err, ErrInsecureURL) {
			t.Errorf("%s: %v", u, err)
		}
		var ue *URLError
		if !errors.As(err, &ue) {
			t.Errorf("%s: not a *URLError", u)
		} else if strings.Contains(ue.Error(), "SECRETQ") || strings.Contains(ue.Error(), "pw") {
			t.Errorf("URL error shows query or password: %v", ue)
		}
	}
	if n := base.n.Load(); n != 0 {
		t.Errorf("%d requests sent over plain http", n)
	}
	c = &http.Client{Transport: NewTransport(m, base, WithInsecureLoopback())}
	resp, err := get(t, c, plain.URL+"/x")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("loopback with WithInsecureLoopback: %v", err)
	}
	if _, err := get(t, c, "http://example.com/"); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("WithInsecureLoopback allowed a remote host: %v", err)
	}
}

func TestTransportOnlyAllowedHosts(t *testing.T) {
	_, auth, _, ms := setupRefresh(t, 1)
	m := ms[0]
	srv := newAPIServer(t, auth, true)
	c := &http.Client{Transport: NewTransport(m, srv.Client().Transport, WithHosts("api.axiom.trade"))}
	resp, err := get(t, c, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 {
		t.Errorf("status %d", resp.StatusCode)
	}
	h := srv.headers()[0]
	if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
		t.Error("credentials sent to a host outside WithHosts")
	}
	if auth.calls.Load() != 0 {
		t.Error("refresh for a host outside WithHosts")
	}
}

func TestTransportRedirectToOtherHostDropsCredentials(t *testing.T) {
	_, auth, _, ms := setupRefresh(t, 1)
	m := ms[0]
	m.Refresh(ctxT(t))
	// Two TLS servers with the same test certificate: one on 127.0.0.1,
	// one on [::1]; the first redirects to the second.
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	second := &apiServer{auth: auth}
	second.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second.mu.Lock()
		second.seen = append(second.seen, r.Header.Clone())
		second.mu.Unlock()
	}))
	second.Listener.Close()
	second.Listener = l
	second.StartTLS()
	defer second.Close()
	first := httptest.NewTLSServer(http.RedirectHandler(second.URL+"/landing", http.StatusFound))
	defer first.Close()
	c := &http.Client{Transport: NewTransport(m, second.Client().Transport)}
	if _, err := get(t, c, first.URL); err != nil {
		t.Fatal(err)
	}
	hs := second.headers()
	if len(hs) != 1 {
		t.Fatalf("second server saw %d requests", len(hs))
	}
	if hs[0].Get("Authorization") != "" || hs[0].Get("Cookie") != "" {
		t.Error("credentials followed a redirect to another host")
	}
}

// TestTransportRefreshesOnceForManyRequests: 32 requests from two
// Managers of one session. With tokens due for a refresh but not expired,
// every request goes out at once with the current tokens while one
// refresh runs in the background; with expired tokens, every request
// waits for one refresh and goes out with the new tokens.
func TestTransportRefreshesOnceForManyRequests(t *testing.T) {
	for _, expired := range []bool{false, true} {
		t.Run(fmt.Sprintf("expired=%v", expired), func(t *testing.T) {
			_, auth, clk, ms := setupRefresh(t, 2)
			if expired {
				clk.advance(10 * time.Minute) // 4 min left: expired (5-min buffer)
			}
			srv := newAPIServer(t, auth, true)
			var wg sync.WaitGroup
			for _, m := range ms {
				c := &http.Client{Transport: NewTransport(m, srv.Client().Transport)}
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := get(t, c, srv.URL)
						if err != nil {
							t.Error(err)
						} else if resp.StatusCode != 200 {
							t.Errorf("status %d", resp.StatusCode)
						}
					}()
				}
			}
			wg.Wait()
			for _, m := range ms {
				m.bg.Wait()
			}
			if n := auth.calls.Load(); n != 1 {
				t.Errorf("%d refreshes for 32 requests from 2 managers, want 1", n)
			}
			for _, h := range srv.headers() {
				got := h.Get("Authorization")
				if got != "Bearer a1" && (expired || got != "Bearer a0") {
					t.Errorf("request sent with %q", got)
				}
			}
		})
	}
}

func TestTransportRetriesAfter401(t *testing.T) {
	st := newTestStore(t)
	clk := newClock(t0)
	auth := &authServer{current: "r0", clock: clk.now}
	m := newTestManager(t, st, WithClock(clk.now), seedBuffers(), WithRefresher(auth.refresh))
	// Tokens without expiry: the clock never asks for a refresh, so
	// only the server's 401 can trigger it.
	tok := tokens("stale", "r0", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, authCookies("c", "c")); err != nil {
		t.Fatal(err)
	}
	srv := newAPIServer(t, auth, true)
	var reported []error
	c := &http.Client{Transport: NewTransport(m, srv.Client().Transport, WithErrorHandler(func(err error) { reported = append(reported, err) }))}
	resp, err := get(t, c, srv.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET after 401: %v %v", resp, err)
	}
	if n := auth.calls.Load(); n != 1 || len(srv.headers()) != 2 {
		t.Errorf("%d refreshes, %d requests; want 1 and 2", n, len(srv.headers()))
	}
	// A POST is not replayed, but the refresh still happens for later requests.
	tok2 := tokens("stale-again", "r1", nil)
	defer tok2.Destroy()
	m.UpdateTokens(ctxT(t), tok2)
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, srv.URL, bytes.NewReader([]byte("order")))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(srv.headers()) != 3 {
		t.Errorf("POST: status %d after %d requests; want 401 after 3", resp.StatusCode, len(srv.headers()))
	}
	if n := auth.calls.Load(); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
	// With an Idempotency-Key and a replayable body, it is retried.
	tok3 := tokens("stale-3", "r2", nil)
	defer tok3.Destroy()
	m.UpdateTokens(ctxT(t), tok3)
	req, _ = http.NewRequestWithContext(ctxT(t), http.MethodPost, srv.URL, bytes.NewReader([]byte("order")))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST with Idempotency-Key: status %d", resp.StatusCode)
	}
	if len(reported) != 0 {
		t.Errorf("errors reported: %v", reported)
	}
	// A refused refresh token: one refresh attempt, no retry, no storm;
	// the dead session is dropped.
	tok4 := tokens("stale-4", "revoked", nil)
	defer tok4.Destroy()
	m.UpdateTokens(ctxT(t), tok4)
	before, calls := len(srv.headers()), auth.calls.Load()
	_, err = get(t, c, srv.URL)
	var uerr *url.Error
	if !errors.As(err, &uerr) || !errors.Is(err, ErrReauthRequired) || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("refused refresh: err %v, want a *url.Error matching ErrReauthRequired", err)
	}
	if len(srv.headers()) != before+1 || auth.calls.Load() != calls+1 {
		t.Errorf("refused refresh: %d requests, %d refreshes", len(srv.headers())-before, auth.calls.Load()-calls)
	}
	if len(reported) != 1 || !errors.Is(reported[0], ErrReauthRequired) {
		t.Errorf("reported: %v", reported)
	}
	if m.HasSession() {
		t.Error("session with a refused refresh token kept")
	}
	// Every later request fails the same way, without a request or a
	// refresh, until a new session is created.
	if _, err := get(t, c, srv.URL); !errors.Is(err, ErrReauthRequired) || len(srv.headers()) != before+1 || auth.calls.Load() != calls+1 {
		t.Errorf("after the rejection: %v", err)
	}
}

func TestTransportExpiredAndUnrefreshable(t *testing.T) {
	st := newTestStore(t)
	clk := newClock(t0)
	errNet := errors.New("auth server unreachable")
	m := newTestManager(t, st, WithClock(clk.now), seedBuffers(), WithRefresher(func(context.Context, Secret) (AuthTokens, *AuthCookies, error) {
		return AuthTokens{}, nil, errNet
	}))
	exp := t0.Add(10 * time.Minute)
	tok := tokens("a", "r", &exp)
	defer tok.Destroy()
	m.CreateSession(ctxT(t), tok, nil, nil)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var mu sync.Mutex
	var reported []error
	c := &http.Client{Transport: NewTransport(m, srv.Client().Transport, WithErrorHandler(func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}))}
	// In the refresh window but not expired: the request goes out with the
	// old token, and the failure of the background refresh is reported.
	if _, err := get(t, c, srv.URL); err != nil {
		t.Errorf("request within the refresh window: %v", err)
	}
	m.bg.Wait()
	mu.Lock()
	if len(reported) != 1 || !errors.Is(reported[0], errNet) {
		t.Errorf("reported: %v", reported)
	}
	mu.Unlock()
	clk.advance(6 * time.Minute) // expired, and past the backoff
	if _, err := get(t, c, srv.URL); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, errNet) {
		t.Errorf("expired and unrefreshable: %v", err)
	}
}

// TestTransportInsideRefresher: a RefreshFunc that sends its request
// through a Transport of the same Manager neither deadlocks nor recurses.
func TestTransportInsideRefresher(t *testing.T) {
	st := newTestStore(t)
	clk := newClock(t0)
	var refreshSrv *httptest.Server
	var c *http.Client
	var m *Manager
	var calls atomic.Int64
	refreshSrv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Add("Set-Cookie", "auth-access-token=from-refresh")
		io.WriteString(w, "new-access")
	}))
	defer refreshSrv.Close()
	refresher := func(ctx context.Context, rt Secret) (AuthTokens, *AuthCookies, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, refreshSrv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			return AuthTokens{}, nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		exp := clk.now().Add(time.Hour)
		ck := ParseSetCookies(resp.Header)
		return NewAuthTokens(body, []byte("r1"), &exp), &ck, nil
	}
	m = newTestManager(t, st, WithClock(clk.now), seedBuffers(), WithRefresher(refresher))
	exp := t0.Add(10 * time.Minute)
	tok := tokens("a0", "r0", &exp)
	defer tok.Destroy()
	m.CreateSession(ctxT(t), tok, nil, nil)
	c = &http.Client{Transport: NewTransport(m, refreshSrv.Client().Transport)}
	done := make(chan error, 1)
	go func() { done <- m.RefreshIfNeeded(ctxT(t)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: refresh through the Manager's own Transport")
	}
	if calls.Load() != 1 {
		t.Errorf("%d refresh requests", calls.Load())
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "refreshed", s.Tokens.AccessToken, "new-access")
	secretIs(t, "cookie returned by the refresher", *s.Cookies.AuthAccessToken, "from-refresh")
}
