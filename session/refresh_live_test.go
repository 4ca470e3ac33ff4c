package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessionvault/sessionvault/internal/figures"
)

// The tests in this file run the refresh engine in real time against
// liveAuth, a real OAuth 2 server on a loopback port, through
// OAuth2Refresher, with default options unless said otherwise. Their
// figures are reported through internal/figures (go test -v -run
// 'TestLive' ./session/ prints them); scripts/figures keeps them and
// regenerates the rows of SECURITY.md that quote them.

func liveManager(t *testing.T, st *testStore, a *liveAuth, opts ...Option) (*Manager, *countHandler) {
	t.Helper()
	logs := &countHandler{}
	opts = append([]Option{WithRefresher(OAuth2Refresher(a.oauth2Config())), WithLogger(slog.New(logs))}, opts...)
	return newTestManager(t, st, opts...), logs
}

func liveClient(m *Manager) *http.Client {
	return &http.Client{Transport: NewTransport(m, nil, WithInsecureLoopback())}
}

// TestLiveShortTokens: 3-second tokens, default options, 4 goroutines for
// 6.5 s: every call succeeds, and there is at most one refresh per token
// lifetime, none of them failed.
func TestLiveShortTokens(t *testing.T) {
	t.Parallel()
	a := newLiveAuth(t, 3*time.Second)
	m, logs := liveManager(t, newTestStore(t), a)
	tok := a.login()
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	if m.NeedsRefresh() || m.TokensExpired() || !m.HasSession() {
		t.Fatalf("a fresh 3-second token: %s", m.Summary())
	}
	c := liveClient(m)
	start := time.Now()
	calls, failed, _, ferr := hammer(4, 6500*time.Millisecond, 5*time.Millisecond, func() error { return getOK(c, a.URL+"/api") })
	m.bg.Wait()
	el := time.Since(start)
	refreshes, attempts := a.refreshes.Load(), a.attempts.Load()
	t.Logf("3 s tokens, %v: %d calls, %d failed, %d refreshes (%d attempts), %d log lines", el.Round(time.Millisecond), calls, failed, refreshes, attempts, logs.total())
	fig := figures.New("session/live-short-tokens")
	fig.Add("token_ttl_s", int64(a.ttl/time.Second))
	hammerFigures(fig, 4, el, calls, failed, nil)
	fig.Add("refreshes", refreshes)
	fig.Add("failed_refreshes", attempts-refreshes)
	fig.Report(t)
	if failed != 0 {
		t.Errorf("%d of %d calls failed; first: %v", failed, calls, ferr)
	}
	if max := int64(el/a.ttl) + 1; refreshes > max || refreshes < 2 || attempts != refreshes {
		t.Errorf("%d refreshes (%d attempts) in %v of 3-second tokens; want 2 to %d, none failed", refreshes, attempts, el, max)
	}
}

// TestLiveOAuth2Client: an oauth2.NewClient over m.TokenSource works
// across expiries of 3-second tokens with one refresh each.
func TestLiveOAuth2Client(t *testing.T) {
	t.Parallel()
	a := newLiveAuth(t, 3*time.Second)
	m, _ := liveManager(t, newTestStore(t), a)
	tok := a.login()
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	c := oauth2.NewClient(ctx, m.TokenSource(ctx))
	start := time.Now()
	calls, failed, _, ferr := hammer(4, 6500*time.Millisecond, 5*time.Millisecond, func() error { return getOK(c, a.URL+"/api") })
	m.bg.Wait()
	el := time.Since(start)
	refreshes, attempts := a.refreshes.Load(), a.attempts.Load()
	t.Logf("oauth2.NewClient, 3 s tokens, %v: %d calls, %d failed, %d refreshes (%d attempts)", el.Round(time.Millisecond), calls, failed, refreshes, attempts)
	fig := figures.New("session/live-oauth2-client")
	fig.Add("token_ttl_s", int64(a.ttl/time.Second))
	hammerFigures(fig, 4, el, calls, failed, nil)
	fig.Add("refreshes", refreshes)
	fig.Add("failed_refreshes", attempts-refreshes)
	fig.Report(t)
	if failed != 0 {
		t.Errorf("%d of %d calls failed; first: %v", failed, calls, ferr)
	}
	if max := int64(el/a.ttl) + 1; refreshes > max || refreshes < 2 || attempts != refreshes {
		t.Errorf("%d refreshes (%d attempts) in %v; want 2 to %d, none failed", refreshes, attempts, el, max)
	}
	// The token the source hands out is the session's.
	ot, err := m.TokenSource(ctx).Token()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WithAccessToken(func(s Secret) error {
		if string(s.Bytes()) != ot.AccessToken || ot.TokenType != "Bearer" || ot.RefreshToken != "" {
			t.Errorf("token %q type %q refresh %q", "[REDACTED]", ot.TokenType, "[REDACTED]")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if md, _ := m.Metadata(); md.LastRefreshedAt == nil {
		t.Error("refreshes through the TokenSource were not recorded in the session")
	}
}

// TestLiveOutage: tokens in their refresh window, the token endpoint
// answering 503, 8 goroutines for 3 s: every call succeeds with the
// current token, at most 6 refresh attempts and 12 log lines.
func TestLiveOutage(t *testing.T) {
	t.Parallel()
	a := newLiveAuth(t, time.Hour)
	a.set("down", 0)
	m, logs := liveManager(t, storeDue(t, a), a)
	if !m.NeedsRefresh() || m.TokensExpired() {
		t.Fatalf("setup: %s", m.Summary())
	}
	c := liveClient(m)
	start := time.Now()
	calls, failed, _, ferr := hammer(8, 3*time.Second, time.Millisecond, func() error { return getOK(c, a.URL+"/api") })
	m.bg.Wait()
	el := time.Since(start)
	attempts, lines := a.attempts.Load(), logs.total()
	t.Logf("outage, 8 goroutines, %v: %d calls, %d failed, %d refresh attempts (%.1f/s), %d log lines",
		el.Round(time.Millisecond), calls, failed, attempts, float64(attempts)/el.Seconds(), lines)
	fig := figures.New("session/live-outage")
	hammerFigures(fig, 8, el, calls, failed, nil)
	fig.Add("attempts", attempts)
	fig.Note("attempts_per_s", fmt.Sprintf("%.1f", float64(attempts)/el.Seconds()))
	fig.Add("log_lines", int64(lines))
	defer fig.Report(t)
	if failed != 0 {
		t.Errorf("%d of %d calls failed; first: %v", failed, calls, ferr)
	}
	if attempts > 6 || attempts < 2 {
		t.Errorf("%d refresh attempts in %v of outage; want 2 to 6", attempts, el)
	}
	if lines > 12 {
		t.Errorf("%d log lines for %d calls", lines, calls)
	}
	// The server comes back: the next attempt after the backoff succeeds.
	a.set("", 0)
	deadline := time.Now().Add(10 * time.Second)
	for a.refreshes.Load() == 0 && time.Now().Before(deadline) {
		if err := getOK(c, a.URL+"/api"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.bg.Wait()
	if a.refreshes.Load() != 1 || m.NeedsRefresh() {
		t.Errorf("after the outage: %d refreshes, %s", a.refreshes.Load(), m.Summary())
	}
}

// TestLiveSlowRefresh: a refresh that takes 2 s while the tokens are due
// but valid, every response setting a cookie: requests do not wait for it (p99 under 150 ms, 600 ms under
// the race detector) and exactly one refresh happens.
//
// It does not run in parallel with the other live tests: it measures
// latency, and their load on a shared CPU would be in its figure.
func TestLiveSlowRefresh(t *testing.T) {
	a := newLiveAuth(t, time.Hour)
	a.set("", 2*time.Second)
	a.cookies = true // every response sets a cookie: merged without waiting for the refresh
	st := storeDue(t, a)
	m, _ := liveManager(t, st, a)
	c := liveClient(m)
	start := time.Now()
	calls, failed, lat, ferr := hammer(8, 3*time.Second, 10*time.Millisecond, func() error { return getOK(c, a.URL+"/api") })
	el := time.Since(start)
	m.bg.Wait()
	fig := figures.New("session/live-slow-refresh")
	fig.Add("refresh_ms", roundMs(a.delay))
	hammerFigures(fig, 8, el, calls, failed, lat)
	fig.Add("refreshes", a.refreshes.Load())
	fig.Add("bound_ms", roundMs(latencyBound()))
	fig.Report(t)
	p50, p99, pmax := percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	t.Logf("2 s refresh, 8 goroutines, 3 s: %d calls, %d failed, latency p50 %v p99 %v max %v, %d refreshes (%d attempts)",
		calls, failed, p50, p99, pmax, a.refreshes.Load(), a.attempts.Load())
	if failed != 0 {
		t.Errorf("%d of %d calls failed; first: %v", failed, calls, ferr)
	}
	if p99 >= latencyBound() {
		t.Errorf("p99 latency %v during a 2 s refresh, want < %v", p99, latencyBound())
	}
	if a.refreshes.Load() != 1 || a.attempts.Load() != 1 {
		t.Errorf("%d refreshes (%d attempts), want exactly 1", a.refreshes.Load(), a.attempts.Load())
	}
	// The cookies received during the refresh were stored.
	s := st.stored(t)
	defer s.Destroy()
	if _, ok := s.Cookies.Additional["api_seq"]; !ok {
		t.Error("the cookie set during the refresh was not stored")
	}
}

// TestLiveReauthRequired: expired tokens whose refresh token the server
// refuses (invalid_grant): the request fails with a *url.Error matching
// ErrReauthRequired, logged once at Warn; Refresh returns the same.
func TestLiveReauthRequired(t *testing.T) {
	t.Parallel()
	a := newLiveAuth(t, time.Hour)
	a.set("reject", 0)
	st := newTestStore(t)
	m, logs := liveManager(t, st, a)
	exp := time.Now().Add(-time.Minute)
	tok := tokens("at-old", "rt-old", &exp)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	c := liveClient(m)
	_, err := c.Get(a.URL + "/api")
	var uerr *url.Error
	if !errors.As(err, &uerr) || !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("GET with a refused refresh token: %v", err)
	}
	if logs.at(slog.LevelWarn) != 1 || logs.total() != 1 {
		t.Errorf("log records: %v, want one at Warn", logs.counts)
	}
	if a.api.Load() != 0 || a.attempts.Load() != 1 {
		t.Errorf("%d API requests, %d refresh attempts; want 0 and 1", a.api.Load(), a.attempts.Load())
	}
	fig := figures.New("session/live-reauth")
	fig.Add("refresh_attempts", a.attempts.Load())
	fig.Add("api_requests", a.api.Load())
	fig.Add("warn_records", int64(logs.at(slog.LevelWarn)))
	fig.Add("log_records", int64(logs.total()))
	if _, err := c.Get(a.URL + "/api"); !errors.Is(err, ErrReauthRequired) || a.attempts.Load() != 1 {
		t.Errorf("second request: %v after %d attempts", err, a.attempts.Load())
	}
	fig.Add("later_attempts", a.attempts.Load()-fig.Get("refresh_attempts"))
	fig.Add("later_api_requests", a.api.Load()-fig.Get("api_requests"))
	fig.Report(t)

	m2, _ := liveManager(t, newTestStore(t), a)
	if err := m2.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := m2.Refresh(ctxT(t)); !errors.Is(err, ErrReauthRequired) || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Refresh with a refused refresh token: %v", err)
	}
	if _, err := m2.TokenSource(ctxT(t)).Token(); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("TokenSource after the refusal: %v", err)
	}
}

// TestOAuth2RefresherErrors: what the token endpoint answers maps onto the
// categories the Manager acts on, and no error shows the response body.
func TestOAuth2RefresherErrors(t *testing.T) {
	a := newLiveAuth(t, time.Hour)
	rf := OAuth2Refresher(a.oauth2Config())
	tok := a.login()
	defer tok.Destroy()
	rt := tok.RefreshToken
	for _, c := range []struct {
		mode    string
		refused bool
	}{{"down", false}, {"reject", true}} {
		a.set(c.mode, 0)
		_, _, err := rf(ctxT(t), rt)
		var oe *OAuth2Error
		if !errors.As(err, &oe) || errors.Is(err, ErrUnauthorized) != c.refused {
			t.Errorf("%s: %v (refused %v)", c.mode, err, errors.Is(err, ErrUnauthorized))
		}
		if msg := err.Error(); contains(msg, "overloaded") || contains(msg, string(rt.Bytes())) {
			t.Errorf("%s: error shows the body or the token: %s", c.mode, msg)
		}
	}
	a.set("", 0)
	got, _, err := rf(ctxT(t), rt)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Destroy()
	if got.AccessToken.IsEmpty() || got.RefreshToken.Equal(rt) || got.ExpiresAt == nil || time.Until(*got.ExpiresAt) < 59*time.Minute {
		t.Errorf("refreshed tokens: rotated %v, expires %v", !got.RefreshToken.Equal(rt), got.ExpiresAt)
	}
	// The used refresh token is refused now (rotation): ErrUnauthorized.
	if _, _, err := rf(ctxT(t), rt); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("reused refresh token: %v", err)
	}
	// Nothing listening: transient.
	dead := &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: "http://127.0.0.1:1/token"}}
	if _, _, err := OAuth2Refresher(dead)(ctxT(t), rt); err == nil || errors.Is(err, ErrUnauthorized) {
		t.Errorf("unreachable token endpoint: %v", err)
	}
	if got := sanitizeCode("invalid_grant\n\x1b[31m" + string(make([]byte, 200))); got != "invalid_grant31m" {
		t.Errorf("sanitizeCode: %q", got)
	}
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

// TestRefreshBackoffDelay: the pauses grow from [0.5 s, 1 s) by doubling to
// [2.5 min, 5 min), and never overflow.
func TestRefreshBackoffDelay(t *testing.T) {
	fig := figures.New("session/refresh-backoff-delay")
	fig.Declare("outside")
	lo, hi := time.Duration(1<<63-1), time.Duration(0)
	for n := 1; n <= 64; n++ {
		d := min(refreshBackoffMax, refreshBackoffMin<<min(n-1, 20))
		for range 50 {
			got := refreshBackoffDelay(n)
			fig.Inc("pauses")
			lo, hi = min(lo, got), max(hi, got)
			if got < d/2 || got >= d {
				fig.Inc("outside")
				t.Errorf("failure %d: pause %v outside [%v, %v)", n, got, d/2, d)
			}
		}
	}
	fig.Add("failures", 64)
	fig.Add("window_first_ceiling_ms", roundMs(refreshBackoffMin))
	fig.Add("window_last_ceiling_s", int64(refreshBackoffMax/time.Second))
	fig.Add("shortest_ms", roundMs(lo))
	fig.Add("longest_ms", roundMs(hi))
	fig.Report(t)
}

// TestDefaultBuffers: a fresh token of any lifetime is neither expired nor
// due; tokens that live an hour or more get the seed's windows.
func TestDefaultBuffers(t *testing.T) {
	for _, l := range []time.Duration{time.Second, 3 * time.Second, 5 * time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour, 100 * 365 * 24 * time.Hour} {
		e, r := DefaultBuffers(l)
		if e >= r || r >= l {
			t.Errorf("lifetime %v: expiry buffer %v, refresh buffer %v", l, e, r)
		}
		if l >= time.Hour && (e != ExpiryBuffer || r != RefreshBuffer) {
			t.Errorf("lifetime %v: %v, %v; want the seed's", l, e, r)
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		exp := now.Add(l)
		s := &AuthSession{Tokens: AuthTokens{ExpiresAt: &exp}, Metadata: SessionMetadata{CreatedAt: now}}
		if s.TokensExpired(now) || s.TokensNeedRefresh(now) || !s.TokensNeedRefresh(exp.Add(-r)) || !s.TokensExpired(exp.Add(-e)) {
			t.Errorf("lifetime %v: windows wrong", l)
		}
	}
	if e, r := DefaultBuffers(0); e != ExpiryBuffer || r != RefreshBuffer {
		t.Errorf("unknown lifetime: %v %v", e, r)
	}
	// A fresh 5-minute token is valid on arrival (the seed's buffer made
	// it expired).
	m := newTestManager(t, newTestStore(t))
	exp := time.Now().Add(5 * time.Minute)
	tok := tokens("a", "r", &exp)
	defer tok.Destroy()
	m.CreateSession(ctxT(t), tok, nil, authCookies("ca", "cr"))
	if !m.IsSessionValid() || m.NeedsRefresh() {
		t.Errorf("fresh 5-minute token: %s", m.Summary())
	}
}

// TestNeedsRefreshLoopIgnoresTurnkey: the obvious loop refreshes once per
// token lifetime, not on every turn while the Turnkey session is near its
// expiry.
func TestNeedsRefreshLoopIgnoresTurnkey(t *testing.T) {
	clk := newClock(t0)
	auth := &authServer{current: "r0", clock: clk.now}
	m := newTestManager(t, newTestStore(t), WithClock(clk.now), WithRefresher(auth.refresh))
	exp := t0.Add(time.Hour)
	tok := tokens("a0", "r0", &exp)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	tkExp := t0.Add(30 * time.Minute) // inside its one-hour window
	if err := m.UpdateTurnkeySession(ctxT(t), TurnkeySession{OrganizationID: "o", UserID: "u", Username: "user_u", CreatedAt: t0, ExpiresAt: &tkExp}); err != nil {
		t.Fatal(err)
	}
	if !m.TurnkeyNeedsRefresh() {
		t.Fatal("setup: the Turnkey session should need a refresh")
	}
	for range 20 {
		if m.NeedsRefresh() {
			if err := m.Refresh(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
		clk.advance(time.Second)
	}
	if n := auth.calls.Load(); n != 0 {
		t.Errorf("%d refreshes with fresh tokens and a Turnkey session near expiry", n)
	}
	clk.advance(46 * time.Minute) // the tokens are due now
	for range 20 {
		if m.NeedsRefresh() {
			if err := m.Refresh(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := auth.calls.Load(); n != 1 {
		t.Errorf("%d refreshes for one due token, want 1", n)
	}
}

// TestRefreshBacksOff: after a transient failure, Refresh does not call
// the server until the backoff ends, then does.
func TestRefreshBacksOff(t *testing.T) {
	clk := newClock(t0)
	var calls int
	errDown := errors.New("503")
	m := newTestManager(t, newTestStore(t), WithClock(clk.now), WithRefresher(func(context.Context, Secret) (AuthTokens, *AuthCookies, error) {
		calls++
		return AuthTokens{}, nil, errDown
	}))
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	m.CreateSession(ctxT(t), tok, nil, nil)
	err := m.Refresh(ctxT(t))
	var re *RefreshError
	if !errors.As(err, &re) || re.Backoff || !errors.Is(err, errDown) || re.RetryAt.Sub(t0) < 500*time.Millisecond {
		t.Fatalf("first failure: %v", err)
	}
	for range 10 {
		err = m.Refresh(ctxT(t))
	}
	if !errors.As(err, &re) || !re.Backoff || calls != 1 || !errors.Is(err, errDown) {
		t.Errorf("during the backoff: %v after %d calls", err, calls)
	}
	clk.advance(time.Second)
	m.Refresh(ctxT(t))
	if calls != 2 {
		t.Errorf("%d calls after the backoff, want 2", calls)
	}
}
