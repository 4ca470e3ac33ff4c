package session

import (
	"net/http"
	"testing"
	"time"
)

func TestTokenWindows(t *testing.T) {
	exp := t0.Add(time.Hour)
	tok := tokens("a", "r", &exp)
	defer tok.Destroy()
	for _, c := range []struct {
		at               time.Time
		expired, refresh bool
	}{
		{exp.Add(-16 * time.Minute), false, false},
		{exp.Add(-15*time.Minute - time.Nanosecond), false, false},
		{exp.Add(-15 * time.Minute), false, true},
		{exp.Add(-5*time.Minute - time.Nanosecond), false, true},
		{exp.Add(-5 * time.Minute), true, true},
		{exp.Add(time.Hour), true, true},
	} {
		if got := tok.IsExpired(c.at); got != c.expired {
			t.Errorf("IsExpired at exp%v = %v", c.at.Sub(exp), got)
		}
		if got := tok.NeedsRefresh(c.at); got != c.refresh {
			t.Errorf("NeedsRefresh at exp%v = %v", c.at.Sub(exp), got)
		}
	}
	never := tokens("a", "r", nil)
	defer never.Destroy()
	if never.IsExpired(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) || never.NeedsRefresh(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("tokens without expiry must never expire nor need refresh")
	}
}

func TestTurnkeyWindow(t *testing.T) {
	exp := t0.Add(2 * time.Hour)
	tk := &TurnkeySession{ExpiresAt: &exp}
	if tk.NeedsRefresh(exp.Add(-time.Hour - time.Nanosecond)) {
		t.Error("needs refresh before exp-1h")
	}
	if !tk.NeedsRefresh(exp.Add(-time.Hour)) {
		t.Error("no refresh at exp-1h")
	}
	if (&TurnkeySession{}).NeedsRefresh(exp.Add(time.Hour * 1000)) {
		t.Error("no expiry: never")
	}
	var none *TurnkeySession
	if none.NeedsRefresh(exp) {
		t.Error("nil turnkey needs refresh")
	}
}

func TestManagerValidityAndSummary(t *testing.T) {
	clk := newClock(t0)
	m := newTestManager(t, newTestStore(t), WithClock(clk.now), seedBuffers())
	if got := m.Summary(); got != "No active session" {
		t.Errorf("empty summary = %q", got)
	}
	if m.IsSessionValid() || m.NeedsRefresh() {
		t.Error("no session is neither valid nor in need of refresh")
	}
	ctx := ctxT(t)
	exp := t0.Add(time.Hour)
	tok := tokens("acc", "ref", &exp)
	defer tok.Destroy()
	res := LoginResult{
		Tokens:             tok,
		TurnkeyCredentials: &TurnkeyCredentials{OrganizationID: "org", UserID: "a1b2c3d4-0000", ClientSecret: NewSecret([]byte("cs"))},
	}
	defer res.TurnkeyCredentials.Destroy()
	if err := m.CreateSessionFromLoginResult(ctx, res, authCookies("ca", "cr")); err != nil {
		t.Fatal(err)
	}
	clk.advance(45 * time.Minute)
	// exp-15m = t0+45m: tokens need a refresh, session still valid.
	want := "Session: VALID | Tokens: NEEDS_REFRESH | Cookies: PRESENT | Turnkey: ACTIVE | Age: 45m | Last API: NEVER"
	if got := m.Summary(); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	clk.set(t0.Add(43 * time.Minute))
	m.MarkAPICall("api.axiom.trade")
	clk.set(t0.Add(45*time.Minute - time.Nanosecond))
	want = "Session: VALID | Tokens: VALID | Cookies: PRESENT | Turnkey: ACTIVE | Age: 44m | Last API: 1m ago"
	if got := m.Summary(); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	clk.set(t0.Add(45 * time.Minute))
	if !m.IsSessionValid() || !m.NeedsRefresh() || !m.TokensNeedRefresh() || m.TokensExpired() {
		t.Error("at exp-15m: valid, needs refresh")
	}
	clk.set(t0.Add(55 * time.Minute))
	if m.IsSessionValid() || !m.TokensExpired() {
		t.Error("at exp-5m: expired, invalid")
	}
	want = "Session: INVALID | Tokens: EXPIRED | Cookies: PRESENT | Turnkey: ACTIVE | Age: 55m | Last API: 12m ago"
	if got := m.Summary(); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	tk := m.TurnkeySession()
	defer tk.Destroy()
	if tk.Username != "user_a1b2c3d4" || !tk.ExpiresAt.Equal(t0.Add(30*24*time.Hour)) || tk.APIKeys == nil {
		t.Errorf("turnkey from credentials: %+v", tk)
	}
	md, _ := m.Metadata()
	if *md.CurrentAPIServer != "api.axiom.trade" {
		t.Error("current_api_server not set")
	}
}

func TestSummaryVariants(t *testing.T) {
	clk := newClock(t0)
	m := newTestManager(t, newTestStore(t), WithClock(clk.now), seedBuffers())
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	clk.advance(45*time.Minute + 59*time.Second)
	want := "Session: INVALID | Tokens: VALID | Cookies: MISSING | Turnkey: NOT_SET | Age: 45m | Last API: NEVER"
	if got := m.Summary(); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	if m.IsSessionValid() || m.HasValidCookies() {
		t.Error("valid without auth cookies")
	}
	c := authCookies("ca", "cr")
	defer c.Destroy()
	if err := m.UpdateCookies(ctxT(t), *c); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateTurnkeySession(ctxT(t), TurnkeySession{OrganizationID: "o", ClientSecret: NewSecret([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	clk.set(t0.Add(43 * time.Minute))
	m.MarkAPICall("")
	clk.set(t0.Add(45 * time.Minute))
	// The example line of the seed's documentation, reached by the real
	// rules: both cookies present, Turnkey set, last call 2 minutes ago.
	want = "Session: VALID | Tokens: VALID | Cookies: PRESENT | Turnkey: ACTIVE | Age: 45m | Last API: 2m ago"
	if got := m.Summary(); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	md, _ := m.Metadata()
	if md.CurrentAPIServer != nil {
		t.Error(`MarkAPICall("") must not set a server`)
	}
}

func TestUpdateTokensSetsLastRefreshed(t *testing.T) {
	clk := newClock(t0)
	m := newTestManager(t, newTestStore(t), WithClock(clk.now), seedBuffers())
	ctx := ctxT(t)
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.UpdateTokens(ctx, tok); err != ErrNotAuthenticated {
		t.Errorf("UpdateTokens without session: %v", err)
	}
	if err := m.UpdateCookies(ctx, AuthCookies{}); err != ErrNotAuthenticated {
		t.Errorf("UpdateCookies without session: %v", err)
	}
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	if md, _ := m.Metadata(); md.LastRefreshedAt != nil {
		t.Error("new session has last_refreshed_at")
	}
	clk.advance(time.Minute)
	tok2 := tokens("a2", "r2", nil)
	defer tok2.Destroy()
	if err := m.UpdateTokens(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if md, _ := m.Metadata(); md.LastRefreshedAt == nil || !md.LastRefreshedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("last_refreshed_at = %v", md.LastRefreshedAt)
	}
	m.WithAccessToken(func(s Secret) error {
		if string(s.Bytes()) != "a2" {
			t.Error("token not updated")
		}
		return nil
	})
}

func TestParseSetCookies(t *testing.T) {
	h := http.Header{}
	h.Add("Set-Cookie", "auth-access-token=eyJ.abc.def==; Path=/; HttpOnly; Secure")
	h.Add("Set-Cookie", "auth-refresh-token=cmVmcmVzaA==; Max-Age=3600; HttpOnly")
	h.Add("Set-Cookie", "cf_bm=a=b=c; Path=/")
	h.Add("Set-Cookie", `quoted="q v"; Path=/`)
	h.Add("Set-Cookie", `g_state={"i_l":1}; Path=/`)
	h.Add("Set-Cookie", "gone=x; Max-Age=0")
	h.Add("Set-Cookie", "old=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
	h.Add("Set-Cookie", "=novalue")
	h.Add("Set-Cookie", "bad name=x")
	c := ParseSetCookies(h)
	defer c.Destroy()
	if c.AuthAccessToken == nil || string(c.AuthAccessToken.Bytes()) != "eyJ.abc.def==" {
		t.Errorf("access cookie with '=' lost (the seed's bug)")
	}
	if c.AuthRefreshToken == nil || string(c.AuthRefreshToken.Bytes()) != "cmVmcmVzaA==" {
		t.Errorf("refresh cookie with '=' lost")
	}
	if v := c.Additional["cf_bm"]; string(v.Bytes()) != "a=b=c" {
		t.Errorf("cf_bm = %q", v.Bytes())
	}
	if v := c.Additional["quoted"]; string(v.Bytes()) != `"q v"` {
		t.Errorf("quoted = %q", v.Bytes())
	}
	if c.GState == nil || *c.GState != `{"i_l":1}` {
		t.Errorf("g_state = %v", c.GState)
	}
	if len(c.Deleted) != 2 || c.Deleted[0] != "gone" || c.Deleted[1] != "old" {
		t.Errorf("deleted = %v", c.Deleted)
	}
	if len(c.Additional) != 2 {
		t.Errorf("additional = %v", c.Additional)
	}
	// No g_state in the headers: none in the result (the seed put its
	// default there, which then reset the session's g_state on merge).
	h2 := http.Header{}
	h2.Add("Set-Cookie", "x=1")
	c2 := ParseSetCookies(h2)
	defer c2.Destroy()
	if c2.GState != nil {
		t.Error("g_state set without a g_state cookie")
	}
}

func TestCookieMerge(t *testing.T) {
	base := DefaultAuthCookies()
	base.GState = ptr(`{"i_l":7}`)
	base.AuthAccessToken = optSecret([]byte("old-access"))
	base.AuthRefreshToken = optSecret([]byte("old-refresh"))
	base.Additional["keep"] = NewSecret([]byte("k"))
	base.Additional["drop"] = NewSecret([]byte("d"))
	oldAccess := base.AuthAccessToken.Bytes()

	h := http.Header{}
	h.Add("Set-Cookie", "auth-access-token=new-access")
	h.Add("Set-Cookie", "extra=e")
	h.Add("Set-Cookie", "drop=; Max-Age=0")
	delta := ParseSetCookies(h)
	defer delta.Destroy()
	if !base.Merge(delta) {
		t.Fatal("merge reported no change")
	}
	if string(base.AuthAccessToken.Bytes()) != "new-access" || string(base.AuthRefreshToken.Bytes()) != "old-refresh" {
		t.Error("auth cookies not merged")
	}
	if *base.GState != `{"i_l":7}` {
		t.Error("g_state reset by a merge without g_state (the seed's bug)")
	}
	if _, ok := base.Additional["drop"]; ok {
		t.Error("deleted cookie kept")
	}
	if string(base.Additional["keep"].Bytes()) != "k" || string(base.Additional["extra"].Bytes()) != "e" {
		t.Error("additional cookies not merged")
	}
	for _, b := range oldAccess {
		if b != 0 {
			t.Fatal("replaced cookie value not wiped")
		}
	}
	if base.Merge(delta) {
		t.Error("merging the same cookies again reported a change")
	}
	hdr, ok := cookieHeader(&base)
	if !ok || hdr != `g_state={"i_l":7}; auth-refresh-token=old-refresh; auth-access-token=new-access; extra=e; keep=k` {
		t.Errorf("cookie header = %q", hdr)
	}
	base.Destroy()
}

func TestCookieHeaderSkipsUnsafe(t *testing.T) {
	c := AuthCookies{Additional: map[string]Secret{
		"ok":       NewSecret([]byte("1")),
		"inject":   NewSecret([]byte("v; admin=1")),
		"crlf":     NewSecret([]byte("v\r\nX-Evil: 1")),
		"bad name": NewSecret([]byte("v")),
	}}
	defer c.Destroy()
	if h, ok := cookieHeader(&c); !ok || h != "ok=1" {
		t.Errorf("header = %q", h)
	}
	if _, ok := cookieHeader(&AuthCookies{}); ok {
		t.Error("empty cookies give a header")
	}
}

func TestShortTurnkeyUserID(t *testing.T) {
	// The seed sliced user_id[..8] and panicked on shorter ids.
	for id, want := range map[string]string{"": "user_", "abc": "user_abc", "12345678": "user_12345678",
		"123456789": "user_12345678", "ééééééééé": "user_éééééééé"} {
		tk := turnkeyFromCredentials(&TurnkeyCredentials{UserID: id}, t0)
		if tk.Username != want {
			t.Errorf("username for %q = %q, want %q", id, tk.Username, want)
		}
	}
}
