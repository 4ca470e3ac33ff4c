package session

import (
	"strings"
	"testing"
	"time"
)

// TestRequiredCookies: validity asks for the seed's two auth cookies by
// default, for the cookies named by WithRequiredCookies otherwise, and
// for none with an empty list; the summary line follows.
func TestRequiredCookies(t *testing.T) {
	exp := time.Now().Add(2 * time.Hour)
	ck := AuthCookies{AuthAccessToken: optSecret([]byte("ca")), Additional: map[string]Secret{"sid": NewSecret([]byte("s"))}}
	for _, c := range []struct {
		opts  []Option
		valid bool
	}{
		{nil, false}, // auth-refresh-token missing
		{[]Option{WithRequiredCookies(CookieAuthAccessToken, "sid")}, true},
		{[]Option{WithRequiredCookies("sid", "other")}, false},
		{[]Option{WithRequiredCookies()}, true},
	} {
		m := newTestManager(t, newTestStore(t), c.opts...)
		tok := tokens("a", "r", &exp)
		if err := m.CreateSession(ctxT(t), tok, nil, &ck); err != nil {
			t.Fatal(err)
		}
		tok.Destroy()
		sum := m.Summary()
		if m.IsSessionValid() != c.valid || m.HasValidCookies() != c.valid || strings.HasPrefix(sum, "Session: VALID") != c.valid {
			t.Errorf("%d options: valid %v, cookies %v, %q; want %v", len(c.opts), m.IsSessionValid(), m.HasValidCookies(), sum, c.valid)
		}
	}
}

// TestFixedBuffers: WithExpiryBuffer and WithRefreshBuffer replace the
// scaled defaults for tokens of any lifetime.
func TestFixedBuffers(t *testing.T) {
	clk := newClock(t0)
	exp := t0.Add(10 * time.Minute)
	tok := tokens("a", "r", &exp)
	defer tok.Destroy()
	def := newTestManager(t, newTestStore(t), WithClock(clk.now))
	fixed := newTestManager(t, newTestStore(t), WithClock(clk.now), WithExpiryBuffer(time.Minute), WithRefreshBuffer(8*time.Minute))
	for _, m := range []*Manager{def, fixed} {
		if err := m.CreateSession(ctxT(t), tok, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	clk.set(t0.Add(3 * time.Minute)) // 7 min left: due with 8 min, not with 2.5 (L/4)
	if def.NeedsRefresh() || !fixed.NeedsRefresh() {
		t.Errorf("at 7 min left: default due %v, fixed due %v", def.NeedsRefresh(), fixed.NeedsRefresh())
	}
	clk.set(t0.Add(9*time.Minute + 30*time.Second)) // 30 s left: expired with L/10 = 1 min, and with 1 min
	if !def.TokensExpired() || !fixed.TokensExpired() {
		t.Error("30 s left: not expired")
	}
	clk.set(t0.Add(8*time.Minute + 30*time.Second)) // 90 s left
	if def.TokensExpired() || fixed.TokensExpired() || !def.NeedsRefresh() {
		t.Error("90 s left: expired, or not due with the default")
	}
}
