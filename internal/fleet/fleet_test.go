//go:build unix

package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/internal/servicetest"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

const (
	envURL = "SESSIONVAULT_REDIS_URL"

	// Environment of a bot process.
	envPrefix     = "FLEET_PREFIX"
	envPassphrase = "FLEET_PASSPHRASE"
	envAuth       = "FLEET_AUTH_URL"
	envID         = "FLEET_ID"
	envCalls      = "FLEET_CALLS"
	envLeaseTTL   = "FLEET_LEASE_TTL"
	envUnlocked   = "FLEET_UNLOCKED" // "1": the broken bot of the self-test

	sessionName = "fleet"
	bots        = 8
	callsPerBot = 8 // in two goroutines; 64 cookies in all, under the session's cap of 256
)

func TestMain(m *testing.M) {
	reexec.Main(m, map[string]reexec.Func{"bot": bot})
}

func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		msg := envURL + " is not set; run under scripts/with-redis (scripts/with-redis go test ./internal/fleet/)"
		if servicetest.Required() {
			t.Fatal(msg + " [required: CI=true or SESSIONVAULT_REQUIRE_SERVICES=1]")
		}
		t.Skip(msg)
	}
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// authServer is the fake auth and API server. It rotates refresh tokens,
// refuses a refresh token that was already used (401 invalid_grant, as
// OAuth servers with rotation do), accepts only the current access token,
// and sets a unique cookie on every API response.
type authServer struct {
	mu           sync.Mutex
	access       string
	refresh      string
	used         map[string]bool
	gen          int
	refreshes    int // completed rotations
	aborted      int // refresh requests whose client went away before an answer
	invalidGrant int // refresh requests refused as reused or unknown
	unauthorized int // API requests refused for a stale or unknown access token
	apiOK        int
	cookies      map[string]string // every cookie set on a 200 response

	// blockFirst makes the first refresh request wait until its client
	// dies, after sending the client's pid on firstRefresh.
	blockFirst   bool
	firstSeen    bool
	firstRefresh chan int

	arrived int
	all     chan struct{} // closed when every bot reached the barrier
	expect  int
}

func newAuthServer(access, refresh string, expect int) *authServer {
	return &authServer{
		access: access, refresh: refresh, used: map[string]bool{},
		cookies: map[string]string{}, firstRefresh: make(chan int, 1),
		all: make(chan struct{}), expect: expect,
	}
}

func (s *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/barrier":
		s.mu.Lock()
		s.arrived++
		if s.arrived == s.expect {
			close(s.all)
		}
		s.mu.Unlock()
		select {
		case <-s.all:
		case <-r.Context().Done():
		}
	case "/oauth/refresh":
		s.serveRefresh(w, r)
	case "/api/data":
		s.serveAPI(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *authServer) serveRefresh(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	token := r.PostForm.Get("refresh_token")
	s.mu.Lock()
	if s.blockFirst && !s.firstSeen {
		s.firstSeen = true
		s.mu.Unlock()
		pid, _ := strconv.Atoi(r.Header.Get("X-Fleet-Pid"))
		s.firstRefresh <- pid
		select {
		case <-r.Context().Done(): // the client died: nothing was rotated
		case <-time.After(time.Minute):
		}
		s.mu.Lock()
		s.aborted++
		s.mu.Unlock()
		return
	}
	defer s.mu.Unlock()
	if token != s.refresh {
		s.invalidGrant++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_grant"}`)
		return
	}
	s.used[token] = true
	s.gen++
	s.refreshes++
	s.access = fmt.Sprintf("access-%d-%s", s.gen, randomHex(8))
	s.refresh = fmt.Sprintf("refresh-%d-%s", s.gen, randomHex(8))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": s.access, "refresh_token": s.refresh, "expires_in": 3600,
	})
}

func (s *authServer) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.access {
		s.unauthorized++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.apiOK++
	name := fmt.Sprintf("c_%s_%s", r.URL.Query().Get("bot"), r.URL.Query().Get("call"))
	value := randomHex(8)
	s.cookies[name] = value
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/"})
	io.WriteString(w, "ok")
}

// bot is one process of the fleet: it opens the shared vault on Redis and
// makes API calls through the session's Transport.
func bot(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := []redis.Option{redis.WithPrefix(os.Getenv(envPrefix))}
	if ttl, err := time.ParseDuration(os.Getenv(envLeaseTTL)); err == nil && ttl > 0 {
		opts = append(opts, redis.WithLeaseTTL(ttl))
	}
	b, err := redis.NewFromURL(ctx, os.Getenv(envURL), opts...)
	if err != nil {
		return err
	}
	defer b.Close()
	pass := []byte(os.Getenv(envPassphrase))
	var vb backends.Backend = b
	if os.Getenv(envUnlocked) == "1" {
		// Deliberately broken: the backend with its cross-process lock
		// hidden, so each process refreshes on its own.
		vb = struct{ backends.Backend }{b}
	}
	v, err := vault.Open(ctx, vb, vault.WithPassphrase(pass), vault.WithInsecureKDFForTesting())
	clear(pass)
	if err != nil {
		return err
	}
	defer v.Close()
	authURL := os.Getenv(envAuth)
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithRefresher(refresher(authURL)),
		// The seed's windows: the 4-minute token is expired (5-minute
		// buffer), so every request waits for the one refresh.
		session.WithRefreshBuffer(session.RefreshBuffer), session.WithExpiryBuffer(session.ExpiryBuffer))
	if err != nil {
		return err
	}
	tr := session.NewTransport(m, nil, session.WithInsecureLoopback(), session.WithHosts("127.0.0.1"), session.WithAnyPort())
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	id := os.Getenv(envID)
	calls, _ := strconv.Atoi(os.Getenv(envCalls))

	reexec.Report("ready")
	if resp, err := http.Get(authURL + "/barrier"); err != nil {
		return err
	} else {
		resp.Body.Close()
	}

	var wg sync.WaitGroup
	errc := make(chan error, calls)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < calls; i += 2 {
				resp, err := client.Get(fmt.Sprintf("%s/api/data?bot=%s&call=%d", authURL, id, i))
				if err != nil {
					errc <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errc <- fmt.Errorf("call %d: status %d", i, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err, ok := <-errc; ok {
		return err
	}
	if err := m.Close(ctx); err != nil {
		return err
	}
	reexec.Report("done")
	return nil
}

// refresher exchanges the refresh token at the fake auth server.
func refresher(authURL string) session.RefreshFunc {
	return func(ctx context.Context, rt session.Secret) (session.AuthTokens, *session.AuthCookies, error) {
		form := url.Values{"refresh_token": {string(rt.Bytes())}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, authURL+"/oauth/refresh", strings.NewReader(form.Encode()))
		if err != nil {
			return session.AuthTokens{}, nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Fleet-Pid", strconv.Itoa(os.Getpid()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return session.AuthTokens{}, nil, err
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int    `json:"expires_in"`
			Error        string `json:"error"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body); err != nil {
			return session.AuthTokens{}, nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && body.Error == "invalid_grant" {
			return session.AuthTokens{}, nil, fmt.Errorf("%w: invalid_grant", session.ErrUnauthorized)
		}
		if resp.StatusCode != http.StatusOK {
			return session.AuthTokens{}, nil, fmt.Errorf("refresh: status %d", resp.StatusCode)
		}
		exp := time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
		return session.NewAuthTokens([]byte(body.AccessToken), []byte(body.RefreshToken), &exp), nil, nil
	}
}

// fleet sets up a vault on Redis holding a session whose token needs a
// refresh (it expires in ten minutes: inside the fifteen-minute refresh
// window, outside the five-minute expiry buffer), and the auth server.
type fleet struct {
	t          *testing.T
	url        string
	prefix     string
	passphrase string
	srv        *authServer
	http       *httptest.Server
}

func newFleet(t *testing.T) *fleet {
	url := redisURL(t)
	f := &fleet{t: t, url: url, prefix: "svfleet-" + randomHex(6), passphrase: randomHex(16)}
	t.Cleanup(func() { cleanupPrefix(url, f.prefix) })
	ctx := context.Background()
	b, err := redis.NewFromURL(ctx, url, redis.WithPrefix(f.prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte(f.passphrase)), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithRefreshBuffer(session.RefreshBuffer))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(4 * time.Minute)
	cookies := session.DefaultAuthCookies()
	if err := m.CreateSession(ctx, session.NewAuthTokens([]byte("access-0"), []byte("refresh-0"), &exp), nil, &cookies); err != nil {
		t.Fatal(err)
	}
	if !m.NeedsRefresh() {
		t.Fatal("the seeded session does not need a refresh")
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.srv = newAuthServer("access-0", "refresh-0", bots)
	f.http = httptest.NewServer(f.srv)
	t.Cleanup(f.http.Close)
	return f
}

func cleanupPrefix(url, prefix string) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 100).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

func (f *fleet) start(id int, leaseTTL time.Duration, env ...string) *reexec.Child {
	f.t.Helper()
	c, err := reexec.Start("bot", reexec.Options{Env: append([]string{
		envPrefix + "=" + f.prefix, envPassphrase + "=" + f.passphrase, envAuth + "=" + f.http.URL,
		envID + "=" + strconv.Itoa(id), envCalls + "=" + strconv.Itoa(callsPerBot),
		envLeaseTTL + "=" + leaseTTL.String(),
	}, env...)})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// stored returns the session the fleet left in the vault, or why it
// cannot be read.
func (f *fleet) stored() (*session.AuthSession, error) {
	ctx := context.Background()
	b, err := redis.NewFromURL(ctx, f.url, redis.WithPrefix(f.prefix))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(f.passphrase)), vault.WithInsecureKDFForTesting())
	if err != nil {
		return nil, err
	}
	defer v.Close()
	m, err := session.NewManager(ctx, v.Store(sessionName))
	if err != nil {
		return nil, err
	}
	defer m.Close(ctx)
	return m.Snapshot()
}

// measure compares the stored session with what the server handed out,
// in a figures set called name.
func (f *fleet) measure(name string) *figures.Set {
	fig := figures.New(name)
	fig.Declare("processes", "refreshes", "aborted", "invalid_grant", "api_401", "api_ok", "cookies_set", "cookies_lost", "stale_tokens", "session_unreadable")
	fig.Add("processes", bots)
	s, err := f.stored()
	if err != nil {
		f.t.Logf("the stored session: %v", err)
		fig.Inc("session_unreadable")
		s = &session.AuthSession{}
	}
	defer s.Destroy()
	f.srv.mu.Lock()
	defer f.srv.mu.Unlock()
	lost := 0
	for name, value := range f.srv.cookies {
		got, ok := s.Cookies.Additional[name]
		if !ok || string(got.Bytes()) != value {
			lost++
		}
	}
	fig.Add("refreshes", int64(f.srv.refreshes))
	fig.Add("aborted", int64(f.srv.aborted))
	fig.Add("invalid_grant", int64(f.srv.invalidGrant))
	fig.Add("api_401", int64(f.srv.unauthorized))
	fig.Add("api_ok", int64(f.srv.apiOK))
	fig.Add("cookies_set", int64(len(f.srv.cookies)))
	fig.Add("cookies_lost", int64(lost))
	if string(s.Tokens.AccessToken.Bytes()) != f.srv.access || string(s.Tokens.RefreshToken.Bytes()) != f.srv.refresh {
		fig.Inc("stale_tokens")
	}
	return fig
}

// check measures, reports the figures and fails t on any lost property.
func (f *fleet) check(name string, wantCalls int) {
	t := f.t
	fig := f.measure(name)
	fig.Report(t)
	if n := fig.Get("refreshes"); n != 1 {
		t.Errorf("%d refreshes, want exactly 1", n)
	}
	if n := fig.Get("invalid_grant"); n != 0 {
		t.Errorf("%d refresh requests with a used refresh token (invalid_grant)", n)
	}
	if n := fig.Get("api_401"); n != 0 {
		t.Errorf("%d API requests refused with 401", n)
	}
	if n := fig.Get("api_ok"); n != int64(wantCalls) {
		t.Errorf("%d API calls succeeded, want %d", n, wantCalls)
	}
	if n := fig.Get("cookies_lost"); n != 0 {
		t.Errorf("%d of %d cookies set by the server are missing from the stored session", n, fig.Get("cookies_set"))
	}
	if fig.Get("session_unreadable") != 0 {
		t.Error("the stored session does not open")
	} else if fig.Get("stale_tokens") != 0 {
		t.Error("the stored tokens are not the ones the server issued last")
	}
}

// TestFleetRefreshOnce: eight processes, one stale token, one refresh.
func TestFleetRefreshOnce(t *testing.T) {
	f := newFleet(t)
	var children []*reexec.Child
	for i := range bots {
		children = append(children, f.start(i, 0))
	}
	for i, c := range children {
		if err := c.Wait(); err != nil {
			t.Errorf("bot %d: %v\n%s", i, err, c.Stderr())
		}
	}
	f.check("fleet/refresh-once", bots*callsPerBot)
}

// TestFleetHolderKilled: the process that holds the refresh lease is
// killed with SIGKILL while its refresh request is in flight (the server
// holds it until the process is dead, so nothing was rotated). Its lease
// expires, another process refreshes, and nothing is lost.
func TestFleetHolderKilled(t *testing.T) {
	const leaseTTL = 2 * time.Second
	f := newFleet(t)
	f.srv.mu.Lock()
	f.srv.blockFirst = true
	f.srv.mu.Unlock()
	var children []*reexec.Child
	for i := range bots {
		children = append(children, f.start(i, leaseTTL))
	}
	var pid int
	select {
	case pid = <-f.srv.firstRefresh:
	case <-time.After(time.Minute):
		for i, c := range children {
			c.Kill()
			c.Wait()
			t.Logf("bot %d stderr: %s", i, c.Stderr())
		}
		t.Fatal("no refresh request within a minute")
	}
	killed := -1
	for i, c := range children {
		if c.Pid() == pid {
			killed = i
			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if killed < 0 {
		t.Fatalf("the refresh came from pid %d, which is no bot", pid)
	}
	killedAt := time.Now()
	for i, c := range children {
		err := c.Wait()
		switch {
		case i == killed:
			if !reexec.Killed(err) {
				t.Errorf("bot %d (killed): %v", i, err)
			}
		case err != nil:
			t.Errorf("bot %d: %v\n%s", i, err, c.Stderr())
		}
	}
	t.Logf("killed bot %d (pid %d) mid-refresh; the fleet finished %v later (lease TTL %v)",
		killed, pid, time.Since(killedAt).Round(10*time.Millisecond), leaseTTL)
	f.srv.mu.Lock()
	aborted := f.srv.aborted
	f.srv.mu.Unlock()
	if aborted != 1 {
		t.Errorf("%d aborted refreshes, want 1 (the killed holder's)", aborted)
	}
	f.check("fleet/holder-killed", (bots-1)*callsPerBot)
}

// TestFleetHarnessCatchesUncoordinatedRefresh runs the fleet with bots
// whose backend hides its cross-process lock, so that each process
// refreshes the stale token on its own: the harness must count more than
// one refresh or a reused refresh token.
func TestFleetHarnessCatchesUncoordinatedRefresh(t *testing.T) {
	f := newFleet(t)
	var children []*reexec.Child
	for i := range bots {
		children = append(children, f.start(i, 0, envUnlocked+"=1"))
	}
	failed := 0
	for _, c := range children {
		if c.Wait() != nil {
			failed++
		}
	}
	fig := f.measure("fleet/selftest-unlocked")
	fig.Report(t)
	t.Logf("uncoordinated bots: %d of %d failed", failed, bots)
	if fig.Get("refreshes") <= 1 && fig.Get("invalid_grant") == 0 && fig.Get("api_401") == 0 {
		t.Fatal("the harness saw one clean refresh from bots that do not coordinate")
	}
}
