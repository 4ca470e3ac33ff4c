package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
)

func secretIs(t *testing.T, what string, s Secret, want string) {
	t.Helper()
	if string(s.Bytes()) != want {
		t.Errorf("%s = %q, want %q", what, s.Bytes(), want)
	}
}

func TestAutoSaveIsDurableOnReturn(t *testing.T) {
	st := newTestStore(t)
	m := newTestManager(t, st)
	ctx := ctxT(t)
	tok := tokens("a1", "r1", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, &UserInfo{Email: ptr("e@x")}, authCookies("ca", "cr")); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t)
	secretIs(t, "stored access", s.Tokens.AccessToken, "a1")
	if *s.UserInfo.Email != "e@x" {
		t.Error("user info not stored")
	}
	s.Destroy()

	tok2 := tokens("a2", "r2", nil)
	defer tok2.Destroy()
	if err := m.UpdateTokens(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	s = st.stored(t)
	secretIs(t, "stored access", s.Tokens.AccessToken, "a2")
	if s.Metadata.LastRefreshedAt == nil {
		t.Error("last_refreshed_at not stored")
	}
	s.Destroy()

	c := AuthCookies{Additional: map[string]Secret{"x": NewSecret([]byte("1"))}}
	defer c.Destroy()
	if err := m.UpdateCookies(ctx, c); err != nil {
		t.Fatal(err)
	}
	s = st.stored(t)
	secretIs(t, "stored cookie", s.Cookies.Additional["x"], "1")
	secretIs(t, "stored auth cookie", *s.Cookies.AuthAccessToken, "ca")
	s.Destroy()

	seals := st.seals.Load()
	if err := m.UpdateCookies(ctx, c); err != nil {
		t.Fatal(err)
	}
	if st.seals.Load() != seals {
		t.Error("a merge that changes nothing was written")
	}

	if err := m.ClearSession(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Open(ctx); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("stored session after ClearSession: %v", err)
	}
	if m.HasSession() || m.IsSessionValid() {
		t.Error("session in memory after ClearSession")
	}
	if err := m.ClearSession(ctx); err != nil {
		t.Errorf("second ClearSession: %v", err)
	}
}

func TestWithoutAutoSave(t *testing.T) {
	st := newTestStore(t)
	m := newTestManager(t, st, WithAutoSave(false))
	ctx := ctxT(t)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	m.MarkAPICall("s")
	if _, _, err := st.Open(ctx); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("written without auto-save: %v", err)
	}
	if err := m.Save(ctx); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t)
	if s.Metadata.LastAPICallAt == nil {
		t.Error("Save did not write the metadata")
	}
	s.Destroy()
	if err := m.ClearSession(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Open(ctx); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("ClearSession without auto-save left the stored copy: %v", err)
	}
}

func TestNewManagerLoads(t *testing.T) {
	st := newTestStore(t)
	m := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, authCookies("x", "y")); err != nil {
		t.Fatal(err)
	}
	m2 := newTestManager(t, st.sibling("main"))
	if !m2.IsSessionValid() {
		t.Fatal("second manager did not load the session")
	}
	m2.WithAccessToken(func(s Secret) error { secretIs(t, "loaded", s, "a"); return nil })
	// A manager of another name is isolated.
	m3 := newTestManager(t, st.sibling("other"))
	if m3.HasSession() {
		t.Error("sessions of different names are not isolated")
	}
}

func TestNewManagerRefusesUnreadable(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	m := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}

	// Wrong key: a typed error that wraps the store's, no fresh start.
	wrong := newTestStore(t)
	wrong.b = st.b
	if _, err := NewManager(ctx, wrong); !errors.Is(err, errTestAuth) {
		t.Errorf("wrong key: %v", err)
	} else {
		var se *StoreError
		if !errors.As(err, &se) || se.Op != "open" || se.Name != "main" {
			t.Errorf("not a *StoreError: %#v", err)
		}
	}

	// Sealed garbage: ErrInvalidSession.
	bad := st.sibling("bad")
	if _, err := bad.Seal(ctx, []byte(`{"tokens": 1}`), backends.Absent); err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(ctx, bad); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("garbage: %v", err)
	}

	// A store that stays away: an error matching ErrUnavailable.
	st.b.FailNext(memory.OpGet, 10, backends.ErrUnavailable)
	if _, err := NewManager(ctx, st); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("unavailable: %v", err)
	}
	st.b.FailNext(memory.OpGet, 0, nil)
	// One that is briefly away is retried.
	st.b.FailNext(memory.OpGet, 2, backends.ErrUnavailable)
	m2, err := NewManager(ctx, st)
	if err != nil {
		t.Fatalf("transient unavailability not retried: %v", err)
	}
	if !m2.HasSession() {
		t.Error("session not loaded after retry")
	}
	m2.Close(ctx)
}

// TestMarkAPICallDoesNoIO blocks every store write and checks that
// MarkAPICall still returns at once: the write happens behind.
func TestMarkAPICallDoesNoIO(t *testing.T) {
	st := newTestStore(t)
	m := newTestManager(t, st, WithMetadataFlushInterval(time.Millisecond))
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	entered := make(chan struct{}, 100)
	st.b.Before(memory.OpPut, func(ctx context.Context, _ string) error {
		entered <- struct{}{}
		<-gate
		return nil
	})
	done := make(chan struct{})
	go func() {
		for range 10000 {
			m.MarkAPICall("api")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("MarkAPICall blocked on a store write")
	}
	select {
	case <-entered: // the write-behind is under way, blocked
	case <-time.After(10 * time.Second):
		t.Fatal("no write-behind started")
	}
	close(gate)
	st.b.Before(memory.OpPut, nil)
}

func TestWriteBehindCoalesces(t *testing.T) {
	const interval = 40 * time.Millisecond
	st := newTestStore(t)
	m := newTestManager(t, st, WithMetadataFlushInterval(interval))
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var writes []time.Time
	st.b.After(memory.OpPut, func(context.Context, string, error) {
		mu.Lock()
		writes = append(writes, time.Now())
		mu.Unlock()
	})
	start := time.Now()
	calls := 0
	for time.Since(start) < 10*interval {
		m.MarkAPICall("api")
		calls++
	}
	if err := m.Close(ctxT(t)); err != nil { // flushes the last
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if len(writes) < 2 {
		t.Fatalf("%d writes for %d calls over %v", len(writes), calls, elapsed)
	}
	// Every write but the final flush of Close comes at least one interval
	// after the previous one.
	for i := 1; i < len(writes)-1; i++ {
		if gap := writes[i].Sub(writes[i-1]); gap < interval {
			t.Errorf("writes %d and %d only %v apart (interval %v)", i-1, i, gap, interval)
		}
	}
	if max := int(elapsed/interval) + 2; len(writes) > max {
		t.Errorf("%d writes in %v, want at most %d", len(writes), elapsed, max)
	}
	t.Logf("%d MarkAPICall calls in %v: %d writes (interval %v)", calls, elapsed.Round(time.Millisecond), len(writes), interval)
	s := st.stored(t)
	defer s.Destroy()
	if s.Metadata.LastAPICallAt == nil || *s.Metadata.CurrentAPIServer != "api" {
		t.Error("metadata not written")
	}
}

func TestCloseFlushesAndRefusesLater(t *testing.T) {
	st := newTestStore(t)
	clk := newClock(t0)
	m, err := NewManager(ctxT(t), st, WithMetadataFlushInterval(time.Hour), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	m.MarkAPICall("first") // written at once (idle)
	clk.advance(time.Minute)
	m.MarkAPICall("second") // held back for an hour...
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t) // ...but flushed by Close
	defer s.Destroy()
	if !s.Metadata.LastAPICallAt.Equal(t0.Add(time.Minute)) || *s.Metadata.CurrentAPIServer != "second" {
		t.Errorf("Close did not flush: %v %v", s.Metadata.LastAPICallAt, *s.Metadata.CurrentAPIServer)
	}
	if err := m.UpdateTokens(ctx, tok); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateTokens after Close: %v", err)
	}
	if err := m.CreateSession(ctx, tok, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateSession after Close: %v", err)
	}
	if err := m.Load(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if m.HasSession() {
		t.Error("session after Close")
	}
	m.MarkAPICall("x") // no-op, no panic
	if err := m.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestTwoManagersNeverLoseUpdates runs two Managers (as two processes
// would) on one stored session, each unaware of the other's writes.
func TestTwoManagersNeverLoseUpdates(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	clk := newClock(t0)
	a := newTestManager(t, st, WithClock(clk.now))
	tok := tokens("a1", "r1", nil)
	defer tok.Destroy()
	if err := a.CreateSession(ctx, tok, nil, authCookies("ca", "cr")); err != nil {
		t.Fatal(err)
	}
	b := newTestManager(t, st.sibling("main"), WithClock(clk.now))

	ca := AuthCookies{Additional: map[string]Secret{"from_a": NewSecret([]byte("1"))}}
	cb := AuthCookies{Additional: map[string]Secret{"from_b": NewSecret([]byte("2"))}}
	defer ca.Destroy()
	defer cb.Destroy()
	if err := a.UpdateCookies(ctx, ca); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateCookies(ctx, cb); err != nil { // b's version is stale
		t.Fatal(err)
	}
	clk.advance(time.Second)
	tok2 := tokens("a2", "r2", nil)
	defer tok2.Destroy()
	if err := a.UpdateTokens(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	b.MarkAPICall("from-b")
	if err := b.Close(ctx); err != nil { // flushes b's stale view's metadata
		t.Fatal(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "tokens", s.Tokens.AccessToken, "a2")
	secretIs(t, "cookie from a", s.Cookies.Additional["from_a"], "1")
	secretIs(t, "cookie from b", s.Cookies.Additional["from_b"], "2")
	if s.Metadata.CurrentAPIServer == nil || *s.Metadata.CurrentAPIServer != "from-b" {
		t.Error("b's metadata lost")
	}
}

func TestConcurrentCookieStorm(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	a := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := a.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	mgrs := []*Manager{a, newTestManager(t, st.sibling("main")), newTestManager(t, st.sibling("main"))}
	const per = 15
	var wg sync.WaitGroup
	errs := make(chan error, len(mgrs)*per)
	for i, m := range mgrs {
		for j := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := AuthCookies{Additional: map[string]Secret{fmt.Sprintf("m%d_%d", i, j): NewSecret([]byte("v"))}}
				defer c.Destroy()
				if err := m.UpdateCookies(ctx, c); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	if len(s.Cookies.Additional) != len(mgrs)*per {
		t.Errorf("stored %d cookies, want %d", len(s.Cookies.Additional), len(mgrs)*per)
	}
}

func TestDeletedElsewhereWipes(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	a := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := a.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	b := newTestManager(t, st.sibling("main"))
	if err := a.ClearSession(ctx); err != nil {
		t.Fatal(err)
	}
	c := AuthCookies{Additional: map[string]Secret{"x": NewSecret([]byte("1"))}}
	defer c.Destroy()
	err := b.UpdateCookies(ctx, c)
	if !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrNotSaved) {
		t.Errorf("update of a session deleted elsewhere: %v", err)
	}
	if b.HasSession() {
		t.Error("b still holds a session that was logged out elsewhere")
	}
	if _, _, err := st.Open(ctx); !errors.Is(err, backends.ErrNotFound) {
		t.Error("the update resurrected a deleted session")
	}
	// A new login (CreateSession) after a logout elsewhere is written.
	if err := b.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestNotSavedKeepsUpdateInMemory(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	m := newTestManager(t, st)
	tok := tokens("a1", "r1", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("disk on fire")
	st.b.FailNext(memory.OpPut, 1, errDisk)
	tok2 := tokens("a2", "r2", nil)
	defer tok2.Destroy()
	err := m.UpdateTokens(ctx, tok2)
	if !errors.Is(err, ErrNotSaved) || !errors.Is(err, errDisk) {
		t.Fatalf("UpdateTokens with a failing store: %v", err)
	}
	var nse *NotSavedError
	if !errors.As(err, &nse) || nse.Op != "update tokens" {
		t.Errorf("not a *NotSavedError: %#v", err)
	}
	m.WithAccessToken(func(s Secret) error { secretIs(t, "in memory", s, "a2"); return nil })
	s := st.stored(t)
	secretIs(t, "stored", s.Tokens.AccessToken, "a1")
	s.Destroy()
	// The next write carries it.
	c := AuthCookies{Additional: map[string]Secret{"x": NewSecret([]byte("1"))}}
	defer c.Destroy()
	if err := m.UpdateCookies(ctx, c); err != nil {
		t.Fatal(err)
	}
	s = st.stored(t)
	secretIs(t, "stored after retry", s.Tokens.AccessToken, "a2")
	s.Destroy()
}

func TestLoadReappliesUnsaved(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	clk := newClock(t0)
	a := newTestManager(t, st, WithAutoSave(false), WithClock(clk.now))
	tok := tokens("a1", "r1", nil)
	defer tok.Destroy()
	if err := a.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	c := AuthCookies{Additional: map[string]Secret{"local": NewSecret([]byte("1"))}}
	defer c.Destroy()
	if err := a.UpdateCookies(ctx, c); err != nil { // unsaved
		t.Fatal(err)
	}
	b := newTestManager(t, st.sibling("main"), WithClock(clk.now))
	clk.advance(time.Minute)
	tok2 := tokens("a2", "r2", nil)
	defer tok2.Destroy()
	if err := b.UpdateTokens(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	secretIs(t, "loaded tokens", snap.Tokens.AccessToken, "a2")
	secretIs(t, "unsaved cookie", snap.Cookies.Additional["local"], "1")
	snap.Destroy()
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "stored tokens", s.Tokens.AccessToken, "a2")
	secretIs(t, "stored cookie", s.Cookies.Additional["local"], "1")

	empty := newTestManager(t, st.sibling("none"))
	if err := empty.Load(ctx); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load of nothing: %v", err)
	}
}

func TestNewerRefreshWinsOnConflict(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	clk := newClock(t0)
	a := newTestManager(t, st, WithClock(clk.now), WithAutoSave(false))
	tok := tokens("a0", "r0", nil)
	defer tok.Destroy()
	if err := a.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	b := newTestManager(t, st.sibling("main"), WithClock(clk.now))
	tokA := tokens("older", "r", nil)
	defer tokA.Destroy()
	if err := a.UpdateTokens(ctx, tokA); err != nil { // at t0, unsaved
		t.Fatal(err)
	}
	clk.advance(time.Second)
	tokB := tokens("newer", "r", nil)
	defer tokB.Destroy()
	if err := b.UpdateTokens(ctx, tokB); err != nil { // at t0+1s, saved
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	secretIs(t, "stored tokens", s.Tokens.AccessToken, "newer")
	a.WithAccessToken(func(s Secret) error { secretIs(t, "a's tokens", s, "newer"); return nil })
}

func TestNewManagerReadsTokensOnlyFile(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	if _, err := st.Seal(ctx, []byte(`{"access_token":"a","refresh_token":"r","expires_at":"2025-08-14T18:29:27.918204311Z"}`), backends.Absent); err != nil {
		t.Fatal(err)
	}
	clk := newClock(t0)
	m := newTestManager(t, st, WithClock(clk.now), WithUserAgent("bot/1.0"))
	md, ok := m.Metadata()
	if !ok || !md.CreatedAt.Equal(t0) || md.UserAgent != "bot/1.0" {
		t.Fatalf("tokens-only file: %+v", md)
	}
	m.WithAccessToken(func(s Secret) error { secretIs(t, "access", s, "a"); return nil })
	// The next write stores the whole axiomtrade-rs shape.
	m.MarkAPICall("x")
	if err := m.Save(ctx); err != nil {
		t.Fatal(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	if s.Metadata.UserAgent != "bot/1.0" || s.Cookies.GState == nil {
		t.Error("not rewritten as a full session")
	}
}

// TestCookieDeletionSurvivesConflict: a cookie the server deleted is
// deleted in the stored session too when the write meets a newer version.
func TestCookieDeletionSurvivesConflict(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	a := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	c := authCookies("ca", "cr")
	c.Additional["tracker"] = NewSecret([]byte("1"))
	defer c.Destroy()
	if err := a.CreateSession(ctx, tok, nil, c); err != nil {
		t.Fatal(err)
	}
	b := newTestManager(t, st.sibling("main"))
	other := AuthCookies{Additional: map[string]Secret{"other": NewSecret([]byte("2"))}}
	defer other.Destroy()
	if err := b.UpdateCookies(ctx, other); err != nil {
		t.Fatal(err)
	}
	del := AuthCookies{Deleted: []string{"tracker", CookieAuthAccessToken}, Additional: map[string]Secret{"new": NewSecret([]byte("3"))}}
	defer del.Destroy()
	if err := a.UpdateCookies(ctx, del); err != nil { // a is stale
		t.Fatal(err)
	}
	s := st.stored(t)
	defer s.Destroy()
	if _, ok := s.Cookies.Additional["tracker"]; ok {
		t.Error("deleted cookie resurrected by the conflict")
	}
	if s.Cookies.AuthAccessToken != nil {
		t.Error("deleted auth cookie resurrected")
	}
	secretIs(t, "other writer's cookie", s.Cookies.Additional["other"], "2")
	secretIs(t, "new cookie", s.Cookies.Additional["new"], "3")
}

func TestMergeDelta(t *testing.T) {
	var d AuthCookies
	d.mergeDelta(AuthCookies{Deleted: []string{"x", "y"}})
	d.mergeDelta(AuthCookies{Additional: map[string]Secret{"x": NewSecret([]byte("1"))}})
	d.mergeDelta(AuthCookies{Deleted: []string{"y"}})
	defer d.Destroy()
	if len(d.Deleted) != 1 || d.Deleted[0] != "y" || string(d.Additional["x"].Bytes()) != "1" {
		t.Errorf("delta: deleted %v, additional %v", d.Deleted, d.Additional)
	}
}
