// Package fakeauth is a local stand-in for a trading platform's auth API,
// for vaultctl's demo and for tests: it logs in, rotates refresh tokens
// (refusing a reused one, as real servers do), and serves an API endpoint
// that wants both the bearer token and the auth cookies.
//
// It listens on loopback only (net/http/httptest) and holds throwaway
// tokens it generated itself. It is not a model of any real server's
// security: it exists so that the whole session lifecycle can run with no
// network and no account.
package fakeauth

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Cookie names the server sets, as the platform axiomtrade-rs talks to
// names them.
const (
	AccessCookie  = "auth-access-token"
	RefreshCookie = "auth-refresh-token"
)

// Paths served.
const (
	LoginPath   = "/auth/login"
	RefreshPath = "/auth/refresh"
	APIPath     = "/api/portfolio"
)

// Demo credentials: the only account the server knows.
const (
	Email    = "demo@example.invalid"
	Password = "demo-password"
)

// TokenResponse is what login and refresh return as JSON.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	// ExpiresAt is when the access token stops being accepted.
	ExpiresAt time.Time `json:"expires_at"`
	// Turnkey is the wallet session, on login only.
	Turnkey *Turnkey `json:"turnkey,omitempty"`
	// User is the account, on login only.
	User *User `json:"user,omitempty"`
}

// Turnkey is the wallet-provider session the login returns.
type Turnkey struct {
	OrganizationID string    `json:"organization_id"`
	UserID         string    `json:"user_id"`
	Username       string    `json:"username"`
	ClientSecret   string    `json:"client_secret"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// User is the account the login returns.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Server is a running fake auth API. Its methods are safe for concurrent
// use.
type Server struct {
	srv *httptest.Server

	// AccessTTL is the lifetime of the access token a login issues, and
	// RefreshedTTL of one a refresh issues. The demo logs in with a token
	// close enough to expiry to need a refresh (15 minutes early) and
	// gets a fresh hour from the refresh. Set them before the first
	// request.
	AccessTTL, RefreshedTTL time.Duration

	mu      sync.Mutex
	access  map[string]time.Time // live access token -> expiry
	refresh string               // the one live refresh token
	used    map[string]bool      // refresh tokens already spent
	cookieA string               // live auth cookies
	cookieR string
	counts  Counts
	now     func() time.Time
}

// Counts are the requests the server has seen, by outcome.
type Counts struct {
	Logins        int // successful logins
	Refreshes     int // successful refreshes
	ReusedRefresh int // refreshes refused because the token was spent
	APICalls      int // API calls accepted
	Unauthorized  int // API calls refused
}

// Start starts a server on a loopback port. Close it when done.
func Start() *Server {
	s := &Server{
		AccessTTL:    10 * time.Minute,
		RefreshedTTL: time.Hour,
		access:       make(map[string]time.Time),
		used:         make(map[string]bool),
		now:          time.Now,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+LoginPath, s.login)
	mux.HandleFunc("POST "+RefreshPath, s.refreshTokens)
	mux.HandleFunc("GET "+APIPath, s.api)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the server's base URL (http://127.0.0.1:PORT).
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server and forgets its tokens.
func (s *Server) Close() {
	s.srv.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
	clear(s.used)
	s.refresh, s.cookieA, s.cookieR = "", "", ""
}

// Counts returns the request counts so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// LoginRequest is the body of a login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// RefreshRequest is the body of a refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func newToken(kind string) string {
	return "fake-" + kind + "-" + rand.Text()
}

// issue makes a new token pair and new auth cookies, and spends the old
// refresh token. s.mu is held.
func (s *Server) issue(w http.ResponseWriter, ttl time.Duration) TokenResponse {
	if s.refresh != "" {
		s.used[s.refresh] = true
	}
	exp := s.now().Add(ttl).UTC()
	r := TokenResponse{AccessToken: newToken("access"), RefreshToken: newToken("refresh"), ExpiresAt: exp}
	s.access[r.AccessToken] = exp
	s.refresh = r.RefreshToken
	s.cookieA, s.cookieR = newToken("cookie-a"), newToken("cookie-r")
	// Values with "=" and base64 padding, as real auth cookies have:
	// a cookie parser that splits on every "=" loses them.
	for _, c := range []*http.Cookie{
		{Name: AccessCookie, Value: s.cookieA + "==", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
		{Name: RefreshCookie, Value: s.cookieR + "==", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
	} {
		http.SetCookie(w, c)
	}
	return r
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
		return
	}
	if req.Email != Email || req.Password != Password {
		http.Error(w, `{"error":"invalid_credentials"}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := s.issue(w, s.AccessTTL)
	now := s.now().UTC()
	resp.Turnkey = &Turnkey{
		OrganizationID: "00000000-0000-4000-8000-00000000f00d",
		UserID:         "00000000-0000-4000-8000-0000000000d0",
		Username:       "demo_user",
		ClientSecret:   newToken("turnkey"),
		ExpiresAt:      now.Add(30 * 24 * time.Hour),
	}
	resp.User = &User{ID: "00000000-0000-4000-8000-0000000000d0", Email: Email}
	s.counts.Logins++
	writeJSON(w, resp)
}

func (s *Server) refreshTokens(w http.ResponseWriter, r *http.Request) {
	var req RefreshRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.RefreshToken != "" && s.used[req.RefreshToken]:
		// A spent token coming back means two clients hold it: real
		// servers revoke the whole family. So does this one.
		s.counts.ReusedRefresh++
		s.refresh = ""
		clear(s.access)
		http.Error(w, `{"error":"invalid_grant","error_description":"refresh token reused"}`, http.StatusUnauthorized)
		return
	case req.RefreshToken == "" || req.RefreshToken != s.refresh:
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
		return
	}
	resp := s.issue(w, s.RefreshedTTL)
	s.counts.Refreshes++
	writeJSON(w, resp)
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	exp, live := s.access[tok]
	ca, errA := r.Cookie(AccessCookie)
	cr, errR := r.Cookie(RefreshCookie)
	switch {
	case !ok || !live || !s.now().Before(exp):
		s.counts.Unauthorized++
		http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
		return
	case errA != nil || errR != nil || ca.Value != s.cookieA+"==" || cr.Value != s.cookieR+"==":
		s.counts.Unauthorized++
		http.Error(w, `{"error":"missing_auth_cookies"}`, http.StatusUnauthorized)
		return
	}
	s.counts.APICalls++
	writeJSON(w, map[string]any{"portfolio": map[string]any{"sol": "12.5", "positions": 3}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
