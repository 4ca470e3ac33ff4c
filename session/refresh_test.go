package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
)

// authServer stands in for the remote refresh endpoint: it rotates
// refresh tokens and refuses a refresh token that was already used, as
// servers with refresh-token rotation do.
type authServer struct {
	mu      sync.Mutex
	current string // the one valid refresh token
	n       int    // refreshes served
	calls   atomic.Int64
	delay   time.Duration
	clock   func() time.Time
}

func (a *authServer) refresh(ctx context.Context, rt Secret) (AuthTokens, *AuthCookies, error) {
	a.calls.Add(1)
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if string(rt.Bytes()) != a.current {
		return AuthTokens{}, nil, fmt.Errorf("auth server: invalid_grant: %w", ErrUnauthorized)
	}
	a.n++
	a.current = fmt.Sprintf("r%d", a.n)
	exp := a.clock().Add(time.Hour)
	c := AuthCookies{AuthAccessToken: optSecret(fmt.Appendf(nil, "ca%d", a.n))}
	return tokens(fmt.Sprintf("a%d", a.n), a.current, &exp), &c, nil
}

func setupRefresh(t *testing.T, managers int) (*testStore, *authServer, *clock, []*Manager) {
	t.Helper()
	st := newTestStore(t)
	clk := newClock(t0)
	srv := &authServer{current: "r0", clock: clk.now, delay: 20 * time.Millisecond}
	var ms []*Manager
	for i := range managers {
		s := st
		if i > 0 {
			s = st.sibling("main")
		}
		ms = append(ms, newTestManager(t, s, WithClock(clk.now), seedBuffers(), WithRefresher(srv.refresh)))
		if i == 0 {
			exp := t0.Add(20 * time.Minute)
			tok := tokens("a0", "r0", &exp)
			if err := ms[0].CreateSession(ctxT(t), tok, nil, authCookies("ca0", "cr0")); err != nil {
				t.Fatal(err)
			}
			tok.Destroy()
		}
	}
	for _, m := range ms[1:] {
		if err := m.Load(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(6 * time.Minute) // 14 min left: needs a refresh
	return st, srv, clk, ms
}

func TestRefreshSingleflight(t *testing.T) {
	st, srv, _, ms := setupRefresh(t, 1)
	m := ms[0]
	if !m.NeedsRefresh() {
		t.Fatal("setup: no refresh needed")
	}
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Refresh(ctxT(t)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d refreshes for 64 concurrent callers, want 1", n)
	}
	if m.NeedsRefresh() {
		t.Error("still needs refresh")
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "stored access", s.Tokens.AccessToken, "a1")
	secretIs(t, "stored refresh", s.Tokens.RefreshToken, "r1")
	secretIs(t, "stored cookie from refresh", *s.Cookies.AuthAccessToken, "ca1")
	secretIs(t, "kept cookie", *s.Cookies.AuthRefreshToken, "cr0")
	if s.Metadata.LastRefreshedAt == nil {
		t.Error("last_refreshed_at not set")
	}
}

// TestRefreshAcrossManagers: several Managers on one stored session (as
// several processes are) refresh once in total; the others pick up the
// stored tokens instead of spending the rotated refresh token again.
func TestRefreshAcrossManagers(t *testing.T) {
	_, srv, _, ms := setupRefresh(t, 4)
	var wg sync.WaitGroup
	for _, m := range ms {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Refresh(ctxT(t)); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	for i, m := range ms {
		m.WithAccessToken(func(s Secret) error { secretIs(t, fmt.Sprintf("manager %d", i), s, "a1"); return nil })
	}
}

func TestRefreshWhenStoredTokensAreStaleToo(t *testing.T) {
	_, srv, clk, ms := setupRefresh(t, 2)
	if err := ms[0].Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	clk.advance(50 * time.Minute) // a1 needs a refresh now
	// ms[1] still holds a0 (gen unchanged), the store holds a1, which is
	// stale as well: it must refresh, with r1 from the store.
	if err := ms[1].Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
	ms[1].WithAccessToken(func(s Secret) error { secretIs(t, "after second refresh", s, "a2"); return nil })
}

func TestRefreshNotSavedIsReported(t *testing.T) {
	st, _, _, ms := setupRefresh(t, 1)
	m := ms[0]
	errDisk := errors.New("disk full")
	st.b.FailNext(memory.OpPut, 1, errDisk)
	err := m.Refresh(ctxT(t))
	if !errors.Is(err, ErrNotSaved) || !errors.Is(err, errDisk) {
		t.Fatalf("refresh with a failing store: %v", err)
	}
	// The new tokens are in use...
	m.WithAccessToken(func(s Secret) error { secretIs(t, "in memory", s, "a1"); return nil })
	if m.TokensNeedRefresh() {
		t.Error("refreshed tokens not in effect")
	}
	// ...and the next write stores them.
	if err := m.Save(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "stored after Save", s.Tokens.RefreshToken, "r1")
}

func TestRefreshRejectedDropsSession(t *testing.T) {
	st, srv, _, ms := setupRefresh(t, 1)
	m := ms[0]
	srv.current = "something else" // the stored refresh token is dead
	err := m.Refresh(ctxT(t))
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrNotAuthenticated) || !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("rejected refresh: %v", err)
	}
	var re *RefreshError
	if !errors.As(err, &re) || !re.Dropped {
		t.Errorf("not a dropping *RefreshError: %#v", err)
	}
	if m.HasSession() {
		t.Error("dead session kept in memory")
	}
	if _, _, err := st.Open(ctxT(t)); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("dead session kept in the store: %v", err)
	}
}

// TestRefreshRejectedKeepsNewerSession: while our refresh is refused,
// a writer that does not take the store's lock (an older release, an
// import) stores a newer session (a fresh login). It must survive, and
// become ours.
func TestRefreshRejectedKeepsNewerSession(t *testing.T) {
	st, _, clk, _ := setupRefresh(t, 1)
	m, err := NewManager(ctxT(t), st, WithClock(clk.now), seedBuffers(), WithRefresher(func(ctx context.Context, rt Secret) (AuthTokens, *AuthCookies, error) {
		// Someone logs in again while the server refuses our token.
		tok := tokens("fresh-login", "fresh-refresh", nil)
		s := newSession(tok, nil, nil, clk.now(), "ua")
		tok.Destroy()
		pt, err := s.MarshalPlaintext()
		s.Destroy()
		if err != nil {
			t.Error(err)
		}
		if _, err := st.sibling("main").Seal(ctx, pt, backends.Any); err != nil {
			t.Error(err)
		}
		wipe(pt)
		return AuthTokens{}, nil, fmt.Errorf("invalid_grant: %w", ErrUnauthorized)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctxT(t))
	err = m.Refresh(ctxT(t))
	var re *RefreshError
	if !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotAuthenticated) || errors.Is(err, ErrReauthRequired) ||
		!errors.As(err, &re) || !re.Superseded {
		t.Fatalf("refresh: %v (the newer session is in use: no re-authentication)", err)
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "stored session", s.Tokens.AccessToken, "fresh-login")
	m.WithAccessToken(func(s Secret) error { secretIs(t, "adopted", s, "fresh-login"); return nil })
}

// TestLoginDuringRejectedRefresh: another Manager logs in again while our
// refresh is being refused. Its write waits for the store's lock, which
// the refresh holds; the refresh drops the dead session, then the new
// login is stored, and nothing of it is lost.
func TestLoginDuringRejectedRefresh(t *testing.T) {
	st, _, clk, _ := setupRefresh(t, 1)
	other := newTestManager(t, st.sibling("main"), WithClock(clk.now), seedBuffers())
	loggedIn := make(chan error, 1)
	m, err := NewManager(ctxT(t), st, WithClock(clk.now), seedBuffers(), WithRefresher(func(ctx context.Context, rt Secret) (AuthTokens, *AuthCookies, error) {
		go func() {
			tok := tokens("fresh-login", "fresh-refresh", nil)
			defer tok.Destroy()
			loggedIn <- other.CreateSession(context.Background(), tok, nil, nil)
		}()
		time.Sleep(20 * time.Millisecond) // let the login reach the lock
		return AuthTokens{}, nil, fmt.Errorf("invalid_grant: %w", ErrUnauthorized)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctxT(t))
	err = m.Refresh(ctxT(t))
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("refresh: %v", err)
	}
	if err := <-loggedIn; err != nil {
		t.Fatalf("the login waiting for the lock: %v", err)
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "stored session", s.Tokens.AccessToken, "fresh-login")
	if err := m.Load(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m.WithAccessToken(func(s Secret) error { secretIs(t, "loaded", s, "fresh-login"); return nil })
}

func TestRefreshErrors(t *testing.T) {
	st := newTestStore(t)
	m := newTestManager(t, st)
	if err := m.Refresh(ctxT(t)); !errors.Is(err, ErrNotAuthenticated) {
		t.Errorf("refresh without session: %v", err)
	}
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	m.CreateSession(ctxT(t), tok, nil, nil)
	if err := m.Refresh(ctxT(t)); !errors.Is(err, ErrNoRefresher) {
		t.Errorf("refresh without refresher: %v", err)
	}
	errNet := errors.New("connection reset")
	m2 := newTestManager(t, st.sibling("main"), WithRefresher(func(context.Context, Secret) (AuthTokens, *AuthCookies, error) {
		return AuthTokens{}, nil, errNet
	}))
	err := m2.Refresh(ctxT(t))
	if !errors.Is(err, errNet) || errors.Is(err, ErrNotAuthenticated) {
		t.Errorf("transient refresh failure: %v", err)
	}
	if !m2.HasSession() {
		t.Error("transient failure dropped the session")
	}
	noRT := st.sibling("nort")
	m3 := newTestManager(t, noRT, WithRefresher(func(context.Context, Secret) (AuthTokens, *AuthCookies, error) {
		t.Error("refresher called without a refresh token")
		return AuthTokens{}, nil, nil
	}))
	tokNoRT := tokens("a", "", nil)
	m3.CreateSession(ctxT(t), tokNoRT, nil, nil)
	if err := m3.Refresh(ctxT(t)); !errors.Is(err, ErrTokenNotFound) {
		t.Errorf("refresh without refresh token: %v", err)
	}
}

func TestRefreshCallerContext(t *testing.T) {
	_, srv, _, ms := setupRefresh(t, 1)
	srv.delay = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ms[0].Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: %v", err)
	}
	// The refresh itself was not cut short: it completes for the others.
	if err := ms[0].Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}
