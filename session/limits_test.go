package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// limitSession returns a small valid session created at t0.
func limitSession() *AuthSession {
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	return newSession(tok, nil, nil, t0, "ua")
}

// manyCookies returns n cookies named prefix0, prefix1, ... with value v.
func manyCookies(prefix string, n int, v string) AuthCookies {
	c := AuthCookies{Additional: make(map[string]Secret, n)}
	for i := range n {
		c.Additional[prefix+fmt.Sprint(i)] = NewSecret([]byte(v))
	}
	return c
}

// TestWriterRefusesWhatReaderRefuses puts each bound of the reader
// (limits.go) on the writer, at the bound and one past it: at the bound
// the session is written and read back; past it the writer refuses it
// with an error matching ErrTooLarge (or ErrInvalidSession for a value no
// size can fix), so nothing is ever stored that cannot be read again.
func TestWriterRefusesWhatReaderRefuses(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		edit func(s *AuthSession, over int) // over is 0 (at the bound) or 1 (past it)
		want error
	}{
		{"cookie count", func(s *AuthSession, over int) {
			s.Cookies.Additional = manyCookies("c", maxCookies+over, "v").Additional
		}, ErrTooLarge},
		{"api key count", func(s *AuthSession, over int) {
			s.TurnkeySession = &TurnkeySession{ClientSecret: NewSecret([]byte("s")), CreatedAt: t0}
			for i := range maxAPIKeys + over {
				s.TurnkeySession.APIKeys = append(s.TurnkeySession.APIKeys, TurnkeyAPIKey{APIKeyID: fmt.Sprint(i), CreatedAt: t0})
			}
		}, ErrTooLarge},
		{"access token length", func(s *AuthSession, over int) {
			s.Tokens.AccessToken = NewSecret([]byte(long(maxStringLen + over)))
		}, ErrTooLarge},
		{"escaped string length", func(s *AuthSession, over int) {
			// The bound is on the unescaped length: 6 bytes of "\u0001"
			// count as one.
			s.Tokens.RefreshToken = NewSecret(bytes.Repeat([]byte{1}, maxStringLen+over))
		}, ErrTooLarge},
		{"cookie name length", func(s *AuthSession, over int) {
			s.Cookies.Additional[long(maxStringLen+over)] = NewSecret([]byte("v"))
		}, ErrTooLarge},
		{"cookie value length", func(s *AuthSession, over int) {
			s.Cookies.Additional["c"] = NewSecret([]byte(long(maxStringLen + over)))
		}, ErrTooLarge},
		{"g_state length", func(s *AuthSession, over int) {
			s.Cookies.GState = ptr(long(maxStringLen + over))
		}, ErrTooLarge},
		{"user agent length", func(s *AuthSession, over int) {
			s.Metadata.UserAgent = long(maxStringLen + over)
		}, ErrTooLarge},
		{"api key field length", func(s *AuthSession, over int) {
			s.TurnkeySession = &TurnkeySession{ClientSecret: NewSecret([]byte("s")), CreatedAt: t0,
				APIKeys: []TurnkeyAPIKey{{PublicKey: long(maxStringLen + over), CreatedAt: t0}}}
		}, ErrTooLarge},
		{"total size", func(s *AuthSession, over int) {
			// Cookies of 60 KiB each, then one sized to end the JSON at
			// exactly maxSessionJSON (+ over) bytes.
			s.Cookies.Additional = manyCookies("big", 16, long(60<<10)).Additional
			n := mustMeasure(t, s)
			pad := maxSessionJSON + over - n - len(`,
      "pad": ""`)
			s.Cookies.Additional["pad"] = NewSecret([]byte(long(pad)))
		}, ErrTooLarge},
		{"invalid UTF-8", func(s *AuthSession, over int) {
			s.Cookies.Additional["c"] = NewSecret([]byte("ok\xff"[:2+over]))
		}, ErrInvalidSession},
		{"year", func(s *AuthSession, over int) {
			s.Metadata.LastAPICallAt = ptr(time.Date(9999+over, 12, 31, 23, 59, 59, 999999999, time.UTC))
		}, ErrInvalidSession},
	}
	for _, c := range cases {
		for over := range 2 {
			s := limitSession()
			c.edit(s, over)
			out, err := s.MarshalPlaintext()
			size, merr := s.measure()
			s.Destroy()
			if over == 0 {
				if err != nil {
					t.Errorf("%s at the bound: refused: %v", c.name, err)
					continue
				}
				if merr != nil || size != len(out) {
					t.Errorf("%s: measure = %d, %v; MarshalPlaintext wrote %d bytes", c.name, size, merr, len(out))
				}
				back, err := ParseSession(out)
				wipe(out)
				if err != nil {
					t.Errorf("%s at the bound: written, then refused when read: %v", c.name, err)
					continue
				}
				back.Destroy()
				continue
			}
			if err == nil {
				_, rerr := ParseSession(out)
				wipe(out)
				t.Errorf("%s past the bound: written (reader says %v)", c.name, rerr)
				continue
			}
			if !errors.Is(err, c.want) {
				t.Errorf("%s past the bound: %v, want an error matching %v", c.name, err, c.want)
			}
			if !errors.Is(merr, c.want) {
				t.Errorf("%s past the bound: measure says %v, want an error matching %v", c.name, merr, c.want)
			}
		}
	}
}

func mustMeasure(t *testing.T, s *AuthSession) int {
	t.Helper()
	n, err := s.measure()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestContentionCookiesFit: the contention requirement, 8 processes x 200
// uniquely named cookies on one session, fits the cookie bound and the
// vault's 1 MiB plaintext cap, and loads again.
func TestContentionCookiesFit(t *testing.T) {
	s := limitSession()
	defer s.Destroy()
	for w := range 8 {
		for k := range 200 {
			s.Cookies.Additional[fmt.Sprintf("w%d-%d", w, k)] = NewSecret([]byte("v"))
		}
	}
	out, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	defer wipe(out)
	back, err := ParseSession(out)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Destroy()
	if len(back.Cookies.Additional) != 1600 {
		t.Fatalf("%d cookies read back", len(back.Cookies.Additional))
	}
	t.Logf("1,600 cookies: %d bytes of JSON (limit %d)", len(out), maxSessionJSON)
}

// TestUpdatesRefuseBeforeApplying: an update that would make the session
// exceed a bound is refused with ErrTooLarge before anything changes,
// in memory or in the store, and the stored session still loads.
func TestUpdatesRefuseBeforeApplying(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	m := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, authCookies("ca", "cr")); err != nil {
		t.Fatal(err)
	}
	fill := manyCookies("c", maxCookies, "v")
	defer fill.Destroy()
	if err := m.UpdateCookies(ctx, fill); err != nil {
		t.Fatalf("%d cookies: %v", maxCookies, err)
	}

	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want an error matching ErrTooLarge", what, err)
		}
		if errors.Is(err, ErrNotSaved) {
			t.Errorf("%s: %v says the change is in memory", what, err)
		}
		var le *LimitError
		if !errors.As(err, &le) {
			t.Errorf("%s: %T is not a *LimitError", what, err)
		}
	}
	seals := st.seals.Load()
	one := manyCookies("extra", 1, "v")
	defer one.Destroy()
	refused("one cookie past the bound", m.UpdateCookies(ctx, one))

	// Replacing a cookie and deleting one to add another still fit.
	swap := AuthCookies{Additional: map[string]Secret{"c0": NewSecret([]byte("w")), "extra0": NewSecret([]byte("v"))}, Deleted: []string{"c1"}}
	defer swap.Destroy()

	big := tokens(strings.Repeat("x", maxStringLen+1), "r", nil)
	defer big.Destroy()
	refused("an oversized token", m.UpdateTokens(ctx, big))
	tk := TurnkeySession{ClientSecret: NewSecret(make([]byte, maxStringLen+1)), CreatedAt: t0}
	defer tk.Destroy()
	refused("an oversized Turnkey secret", m.UpdateTurnkeySession(ctx, tk))
	over := manyCookies("c", maxCookies+1, "v")
	defer over.Destroy()
	refused("a new session past the bound", m.CreateSession(ctx, tok, nil, &over))

	if st.seals.Load() != seals {
		t.Errorf("%d writes of refused updates", st.seals.Load()-seals)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Cookies.Additional); n != maxCookies {
		t.Errorf("%d cookies in memory after the refusals, want %d", n, maxCookies)
	}
	if !snap.Tokens.AccessToken.Equal(NewSecret([]byte("a"))) || snap.TurnkeySession != nil {
		t.Error("a refused update changed the session in memory")
	}
	snap.Destroy()

	if err := m.UpdateCookies(ctx, swap); err != nil {
		t.Errorf("replace one, delete one, add one at the bound: %v", err)
	}
	// Whatever was acknowledged loads again, in another Manager.
	m2, err := NewManager(ctx, st.sibling("main"))
	if err != nil {
		t.Fatalf("the stored session does not load: %v", err)
	}
	defer m2.Close(ctx)
	snap, _ = m2.Snapshot()
	defer snap.Destroy()
	if _, ok := snap.Cookies.Additional["extra0"]; !ok || len(snap.Cookies.Additional) != maxCookies {
		t.Errorf("stored %d cookies (extra0 %v), want %d", len(snap.Cookies.Additional), ok, maxCookies)
	}
}

// TestMarkAPICallOutOfRangeClock: a call stamped outside the years the
// stored form can hold (a clock set to year 10000) is not recorded, so
// the write behind does not fail at it, nor does any later write.
func TestMarkAPICallOutOfRangeClock(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	var late atomic.Bool
	clock := func() time.Time {
		if late.Load() {
			return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		return t0
	}
	m := newTestManager(t, st, WithClock(clock), WithMetadataFlushInterval(time.Millisecond))
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	late.Store(true)
	m.MarkAPICall("api.example")
	if md, _ := m.Metadata(); md.LastAPICallAt != nil {
		t.Errorf("MarkAPICall recorded %v, a time the stored form cannot hold", md.LastAPICallAt)
	}
	late.Store(false)
	if err := m.UpdateCookies(ctx, manyCookies("c", 1, "v")); err != nil {
		t.Fatalf("a write after the out-of-range call: %v", err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close after the out-of-range call: %v", err)
	}
}

// TestMarkAPICallNeverOverfills: metadata written behind cannot push a
// session at the size bound over it (a write that then failed would fail
// again at every later write).
func TestMarkAPICallNeverOverfills(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	clk := newClock(t0)
	m := newTestManager(t, st, WithClock(clk.now), seedBuffers(), WithMetadataFlushInterval(time.Millisecond))
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	s := newSession(tok, nil, nil, t0, DefaultUserAgent)
	s.Cookies.Additional = manyCookies("big", 16, strings.Repeat("x", 60<<10)).Additional
	pad := maxSessionJSON - mustMeasure(t, s) - len(`,
      "pad": ""`)
	s.Cookies.Additional["pad"] = NewSecret([]byte(strings.Repeat("x", pad)))
	if n := mustMeasure(t, s); n != maxSessionJSON {
		t.Fatalf("test session is %d bytes, want %d", n, maxSessionJSON)
	}
	if err := m.CreateSession(ctx, s.Tokens, nil, &s.Cookies); err != nil {
		t.Fatal(err)
	}
	s.Destroy()
	clk.advance(1234567 * time.Nanosecond)
	m.MarkAPICall("api.example")
	if err := m.Save(ctx); err != nil {
		t.Fatalf("a session at the bound cannot be saved after MarkAPICall: %v", err)
	}
	if md, _ := m.Metadata(); md.LastAPICallAt != nil {
		t.Error("MarkAPICall recorded a call the session has no room for")
	}
	// Updates that make room let it record again.
	del := AuthCookies{Deleted: []string{"pad"}}
	if err := m.UpdateCookies(ctx, del); err != nil {
		t.Fatal(err)
	}
	m.MarkAPICall("api.example")
	if md, _ := m.Metadata(); md.LastAPICallAt == nil || md.CurrentAPIServer == nil {
		t.Error("MarkAPICall not recorded with room to spare")
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stored := st.stored(t)
	defer stored.Destroy()
	if stored.Metadata.LastAPICallAt == nil {
		t.Error("metadata not flushed")
	}
}

// TestConflictReplayPastTheBound: a cookie update that fits this
// Manager's view but not the newer session another writer stored is
// refused (ErrTooLarge) after the re-read; the other writer's session is
// kept as stored and becomes this Manager's view.
func TestConflictReplayPastTheBound(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	a := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := a.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	b := newTestManager(t, st.sibling("main"))
	fill := manyCookies("a", maxCookies-5, "v")
	defer fill.Destroy()
	if err := a.UpdateCookies(ctx, fill); err != nil {
		t.Fatal(err)
	}
	mine := manyCookies("b", 10, "v") // fits b's stale view of 0 cookies
	defer mine.Destroy()
	err := b.UpdateCookies(ctx, mine)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("b's update past the bound after a re-read: %v", err)
	}
	stored := st.stored(t)
	n := len(stored.Cookies.Additional)
	stored.Destroy()
	if n != maxCookies-5 {
		t.Errorf("stored %d cookies, want a's %d", n, maxCookies-5)
	}
	snap, _ := b.Snapshot()
	if len(snap.Cookies.Additional) != maxCookies-5 {
		t.Errorf("b holds %d cookies, want the stored %d", len(snap.Cookies.Additional), maxCookies-5)
	}
	snap.Destroy()
	// b goes on working: a later update that fits is stored.
	few := manyCookies("b", 5, "v")
	defer few.Destroy()
	if err := b.UpdateCookies(ctx, few); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stored = st.stored(t)
	defer stored.Destroy()
	if len(stored.Cookies.Additional) != maxCookies {
		t.Errorf("stored %d cookies, want %d", len(stored.Cookies.Additional), maxCookies)
	}
}

// TestMergedViewIsMerge: the view the limit checks measure is the
// session Merge makes.
func TestMergedViewIsMerge(t *testing.T) {
	base := func() AuthCookies {
		c := *authCookies("ca", "cr")
		c.Additional = map[string]Secret{"keep": NewSecret([]byte("1")), "change": NewSecret([]byte("2")), "drop": NewSecret([]byte("3"))}
		return c
	}
	others := []AuthCookies{
		{},
		{Deleted: []string{"drop", CookieAuthAccessToken, CookieGState, "absent"}},
		{AuthRefreshToken: optSecret([]byte("new")), GState: ptr("g"), Additional: map[string]Secret{"change": NewSecret([]byte("x")), "add": NewSecret([]byte("y"))}},
		{Additional: map[string]Secret{"drop": NewSecret([]byte("back"))}, Deleted: []string{"drop"}},
		{AuthAccessToken: optSecret([]byte("ca")), Deleted: []string{CookieAuthRefreshToken, "keep", "change"}},
	}
	for i, o := range others {
		c := base()
		view := c.mergedView(o)
		s := limitSession()
		s.Cookies = view
		want, err := s.MarshalPlaintext()
		if err != nil {
			t.Fatal(err)
		}
		c.Merge(o)
		s.Cookies = c
		got, err := s.MarshalPlaintext()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("case %d: view\n%s\nmerge\n%s", i, want, got)
		}
		s.Destroy()
		o.Destroy()
	}
}

// interferingStore is a Store whose next n writes each lose the race to
// another writer that does not take the lock (a writer in another process
// whose write was already in flight, or a key rotation): before the
// write, the other writer stores the session with one more cookie.
type interferingStore struct {
	*testStore
	n     int
	other *testStore
}

func (s *interferingStore) Seal(ctx context.Context, pt []byte, v backends.Version) (backends.Version, error) {
	if s.n > 0 {
		s.n--
		cur, _, err := s.other.Open(ctx)
		if err != nil {
			return "", err
		}
		sess, err := ParseSession(cur)
		wipe(cur)
		if err != nil {
			return "", err
		}
		sess.Cookies.Additional[fmt.Sprintf("other%d", s.n)] = NewSecret([]byte("o"))
		out, err := sess.MarshalPlaintext()
		sess.Destroy()
		if err != nil {
			return "", err
		}
		_, err = s.other.Seal(ctx, out, backends.Any)
		wipe(out)
		if err != nil {
			return "", err
		}
	}
	return s.testStore.Seal(ctx, pt, v)
}

// TestWriteUnderLockNeverGivesUp: a durable update returns nil unless the
// storage itself failed. However many writes of others it loses to, a
// Manager holding the store's lock re-reads and writes again; it never
// reports a lost race as an error, and it loses none of the others'
// updates.
func TestWriteUnderLockNeverGivesUp(t *testing.T) {
	ctx := ctxT(t)
	base := newTestStore(t)
	st := &interferingStore{testStore: base, other: base.sibling("main")}
	m := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	const lost = 40
	st.n = lost
	c := manyCookies("mine", 1, "v")
	defer c.Destroy()
	if err := m.UpdateCookies(ctx, c); err != nil {
		t.Fatalf("UpdateCookies after losing %d races: %v", lost, err)
	}
	stored := base.stored(t)
	defer stored.Destroy()
	if _, ok := stored.Cookies.Additional["mine0"]; !ok {
		t.Error("the update is not stored")
	}
	for i := range lost {
		if _, ok := stored.Cookies.Additional[fmt.Sprintf("other%d", i)]; !ok {
			t.Errorf("the other writer's cookie other%d was lost", i)
		}
	}
}

// stuckStore reports a version conflict on every write while its Open
// keeps returning the version the write was based on: a store that
// contradicts itself.
type stuckStore struct{ *testStore }

func (s stuckStore) Seal(ctx context.Context, pt []byte, v backends.Version) (backends.Version, error) {
	if v == backends.Absent {
		return s.testStore.Seal(ctx, pt, v)
	}
	return "", fmt.Errorf("stuck: %w", backends.ErrConflict)
}

// TestWriteStopsOnSelfContradictingStore: the retry under the lock is
// bounded by progress, not by a count: a store that reports a conflict
// without a newer version is a storage failure, reported, not retried for
// ever.
func TestWriteStopsOnSelfContradictingStore(t *testing.T) {
	ctx := ctxT(t)
	st := stuckStore{newTestStore(t)}
	m := newTestManager(t, st)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	err := m.UpdateTokens(ctx, tok)
	if !errors.Is(err, backends.ErrConflict) || !errors.Is(err, ErrNotSaved) {
		t.Fatalf("UpdateTokens on a self-contradicting store: %v", err)
	}
}

// lockCheckingStore records, for every Seal, whether its lock was held.
type lockCheckingStore struct {
	*testStore
	mu     sync.Mutex
	held   bool
	locked []bool // per Seal: made with the lock held
}

type checkedLock struct {
	s  *lockCheckingStore
	lk backends.Lock
}

func (s *lockCheckingStore) Lock(ctx context.Context) (backends.Lock, error) {
	lk, err := s.testStore.Lock(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
	return &checkedLock{s, lk}, nil
}

func (l *checkedLock) Unlock(ctx context.Context) error {
	l.s.mu.Lock()
	l.s.held = false
	l.s.mu.Unlock()
	return l.lk.Unlock(ctx)
}

func (s *lockCheckingStore) Seal(ctx context.Context, pt []byte, v backends.Version) (backends.Version, error) {
	s.mu.Lock()
	s.locked = append(s.locked, s.held)
	s.mu.Unlock()
	return s.testStore.Seal(ctx, pt, v)
}

// seals returns the lock state of the Seals since the last call.
func (s *lockCheckingStore) seals() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locked
	s.locked = nil
	return l
}

// TestWritesLockOnlyOnConflict: a write that meets no conflict (create,
// updates, metadata written behind, Close's flush) takes no store lock; a
// refresh writes under it; a write whose first attempt meets another
// writer's newer version retries under the lock, and keeps both writers'
// changes.
func TestWritesLockOnlyOnConflict(t *testing.T) {
	ctx := ctxT(t)
	st := &lockCheckingStore{testStore: newTestStore(t)}
	clk := newClock(t0)
	srv := &authServer{current: "r0", clock: clk.now}
	m := newTestManager(t, st, WithClock(clk.now), seedBuffers(), WithRefresher(srv.refresh), WithMetadataFlushInterval(time.Millisecond))
	exp := t0.Add(20 * time.Minute)
	tok := tokens("a0", "r0", &exp)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	c := manyCookies("c", 3, "v")
	defer c.Destroy()
	if err := m.UpdateCookies(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateTokens(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got := st.seals(); !slices.Equal(got, []bool{false, false, false}) {
		t.Errorf("create, cookies, tokens: seals with the lock held %v, want none held", got)
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.seals(); !slices.Equal(got, []bool{true}) {
		t.Errorf("refresh: seals with the lock held %v, want [true]", got)
	}

	// Another writer stores a newer version: the next write's first
	// attempt conflicts, and its retry holds the lock.
	other := newTestManager(t, st.sibling(st.Name()))
	oc := manyCookies("other", 2, "w")
	defer oc.Destroy()
	if err := other.UpdateCookies(ctx, oc); err != nil {
		t.Fatal(err)
	}
	mine := manyCookies("mine", 2, "x")
	defer mine.Destroy()
	if err := m.UpdateCookies(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if got := st.seals(); !slices.Equal(got, []bool{false, true}) {
		t.Errorf("conflicted write: seals with the lock held %v, want [false true]", got)
	}
	stored, _, err := st.testStore.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSession(stored)
	clear(stored)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	for _, k := range []string{"other0", "other1", "mine0", "mine1", "c0"} {
		if _, ok := s.Cookies.Additional[k]; !ok {
			t.Errorf("cookie %s lost in the conflicted write", k)
		}
	}

	m.MarkAPICall("api")
	time.Sleep(20 * time.Millisecond)
	m.MarkAPICall("api2")
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, held := range st.seals() {
		if held {
			t.Errorf("metadata write %d held the lock without a conflict", i)
		}
	}
}

// TestParseSetCookiesSkipsUnstorable: a Set-Cookie a session cannot store
// (a value that is not UTF-8, or longer than a stored string may be) is
// skipped, as malformed lines are, so that it cannot block the other
// cookies of the response from being saved.
func TestParseSetCookiesSkipsUnstorable(t *testing.T) {
	h := http.Header{}
	h.Add("Set-Cookie", "latin1=caf\xe9; Path=/")
	h.Add("Set-Cookie", "huge="+strings.Repeat("x", maxStringLen+1))
	h.Add("Set-Cookie", "auth-access-token=ok; Secure")
	c := ParseSetCookies(h)
	defer c.Destroy()
	if len(c.Additional) != 0 || c.AuthAccessToken == nil {
		t.Errorf("kept %d unstorable cookies; auth cookie kept: %v", len(c.Additional), c.AuthAccessToken != nil)
	}
	s := limitSession()
	defer s.Destroy()
	s.Cookies.Merge(c)
	if _, err := s.measure(); err != nil {
		t.Errorf("the parsed cookies do not fit a session: %v", err)
	}
}
