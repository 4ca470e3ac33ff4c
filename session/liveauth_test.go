package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessionvault/sessionvault/backends"
)

// liveAuth is a real OAuth 2 auth server on a loopback port, with an API
// endpoint that checks the tokens it issued: refresh tokens rotate (a
// used one is refused with invalid_grant), access tokens expire on the
// server's clock, and the token endpoint can be switched to answer 503,
// to refuse every refresh token, or to answer slowly.
type liveAuth struct {
	*httptest.Server
	ttl time.Duration // lifetime of the access tokens it issues

	mu       sync.Mutex
	refresh  string               // the one valid refresh token
	access   map[string]time.Time // live access tokens and their expiry
	mode     string               // "", "down" (503), "reject" (invalid_grant)
	delay    time.Duration        // before answering a token request
	hold     chan struct{}        // when set, token requests wait until it is closed
	cookies  bool                 // API responses set a cookie api_seq=N
	refTimes []time.Time          // successful refreshes

	attempts  atomic.Int64 // token requests received
	abandoned atomic.Int64 // held token requests whose client went away
	refreshes atomic.Int64 // token requests that issued tokens
	api       atomic.Int64 // API requests
	api401    atomic.Int64 // API requests refused
}

func newLiveAuth(t *testing.T, ttl time.Duration) *liveAuth {
	a := &liveAuth{ttl: ttl, access: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", a.token)
	mux.HandleFunc("GET /api", a.apiCall)
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

func randToken(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// login issues tokens as a login would, expiring ttl from now.
func (a *liveAuth) login() AuthTokens {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, rt := randToken("at-"), randToken("rt-")
	exp := time.Now().Add(a.ttl)
	a.access[at], a.refresh = exp, rt
	return tokens(at, rt, &exp)
}

// grant registers tokens made by a test (for sessions stored in a given
// state) as issued, the access token valid until exp.
func (a *liveAuth) grant(access, refresh string, exp time.Time) {
	a.mu.Lock()
	a.access[access], a.refresh = exp, refresh
	a.mu.Unlock()
}

func (a *liveAuth) set(mode string, delay time.Duration) {
	a.mu.Lock()
	a.mode, a.delay = mode, delay
	a.mu.Unlock()
}

func (a *liveAuth) token(w http.ResponseWriter, r *http.Request) {
	a.attempts.Add(1)
	a.mu.Lock()
	mode, delay, hold := a.mode, a.delay, a.hold
	a.mu.Unlock()
	time.Sleep(delay)
	// Reading the body first lets net/http notice a client that goes
	// away (it watches the connection only once the body is read).
	r.ParseForm()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done(): // the client went away (killed)
			a.abandoned.Add(1)
			return
		}
	}
	oauthErr := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if mode == "down" {
		http.Error(w, "auth server overloaded", http.StatusServiceUnavailable)
		return
	}
	if r.FormValue("grant_type") != "refresh_token" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	a.mu.Lock()
	if mode == "reject" || r.FormValue("refresh_token") != a.refresh {
		a.mu.Unlock()
		oauthErr(http.StatusBadRequest, "invalid_grant")
		return
	}
	at, rt := randToken("at-"), randToken("rt-")
	a.access[at], a.refresh = time.Now().Add(a.ttl), rt
	a.refTimes = append(a.refTimes, time.Now())
	a.mu.Unlock()
	a.refreshes.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": at, "token_type": "Bearer", "refresh_token": rt,
		"expires_in": int(a.ttl / time.Second),
	})
}

func (a *liveAuth) apiCall(w http.ResponseWriter, r *http.Request) {
	a.api.Add(1)
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	exp, live := a.access[at]
	a.mu.Unlock()
	if !ok || !live || !time.Now().Before(exp) {
		a.api401.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a.mu.Lock()
	setCookie := a.cookies
	a.mu.Unlock()
	if setCookie {
		http.SetCookie(w, &http.Cookie{Name: "api_seq", Value: strconv.FormatInt(a.api.Load(), 10), Secure: true})
	}
	w.Write([]byte("ok"))
}

func (a *liveAuth) oauth2Config() *oauth2.Config {
	return &oauth2.Config{ClientID: "bot", Endpoint: oauth2.Endpoint{TokenURL: a.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
}

// countHandler is a slog.Handler that counts records by level.
type countHandler struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	if h.counts == nil {
		h.counts = map[slog.Level]int{}
	}
	h.counts[r.Level]++
	h.mu.Unlock()
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func (h *countHandler) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.counts {
		n += c
	}
	return n
}

func (h *countHandler) at(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[l]
}

// storeDue stores a session whose hour-long tokens were issued 50 minutes
// ago: due for a refresh (15-minute window) but not expired, with the
// default windows. The auth server accepts its access token.
func storeDue(t *testing.T, a *liveAuth) *testStore {
	t.Helper()
	st := newTestStore(t)
	now := time.Now().UTC()
	exp := now.Add(10 * time.Minute)
	at, rt := randToken("at-"), randToken("rt-")
	a.grant(at, rt, exp)
	s := &AuthSession{Tokens: tokens(at, rt, &exp), Cookies: DefaultAuthCookies(),
		Metadata: SessionMetadata{CreatedAt: now.Add(-50 * time.Minute), UserAgent: "bot"}}
	defer s.Destroy()
	pt, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	defer wipe(pt)
	if _, err := st.Seal(ctxT(t), pt, backends.Absent); err != nil {
		t.Fatal(err)
	}
	return st
}

// hammer runs g goroutines calling get for d, each pausing pause between
// calls, and returns the number of calls, of failures, and the latencies.
func hammer(g int, d, pause time.Duration, get func() error) (calls, failed int, lat []time.Duration, firstErr error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				start := time.Now()
				err := get()
				el := time.Since(start)
				mu.Lock()
				calls++
				lat = append(lat, el)
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
				time.Sleep(pause)
			}
		}()
	}
	wg.Wait()
	return calls, failed, lat, firstErr
}

func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusErr{resp.StatusCode}
	}
	return nil
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return "status " + strconv.Itoa(e.code) }

func percentile(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// latencyBound is the p99 a request may take while a refresh or a lock
// wait is in progress: 150 ms, or 600 ms under the race detector. A
// request that waited would take seconds (the refresh or the lock hold).
func latencyBound() time.Duration {
	if raceEnabled {
		return 600 * time.Millisecond
	}
	return 150 * time.Millisecond
}
