package session

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

func TestRegistry(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	clk := newClock(t0)
	r := NewRegistry()
	defer r.Close(ctx)
	if _, _, ok := r.Active(); ok {
		t.Error("empty registry has an active session")
	}
	mk := func(name string, exp time.Time, cookies bool) *Manager {
		m, err := NewManager(ctx, st.sibling(name), WithClock(clk.now), seedBuffers())
		if err != nil {
			t.Fatal(err)
		}
		tok := tokens("a-"+name, "r-"+name, &exp)
		defer tok.Destroy()
		var c *AuthCookies
		if cookies {
			c = authCookies("c", "c")
			defer c.Destroy()
		}
		if err := m.CreateSession(ctx, tok, nil, c); err != nil {
			t.Fatal(err)
		}
		return m
	}
	trading := mk("trading", t0.Add(time.Hour), true)
	monitoring := mk("monitoring", t0.Add(10*time.Minute), true)
	nocookie := mk("nocookie", t0.Add(time.Hour), false)
	for id, m := range map[string]*Manager{"trading": trading, "monitoring": monitoring, "nocookie": nocookie} {
		if err := r.Add(id, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add("trading", trading); !errors.Is(err, ErrSessionExists) {
		t.Errorf("duplicate Add: %v", err)
	}
	if got := r.IDs(); !slices.Equal(got, []string{"monitoring", "nocookie", "trading"}) {
		t.Errorf("IDs = %v", got)
	}
	if err := r.Switch("monitoring"); err != nil {
		t.Fatal(err)
	}
	err := r.Switch("nope")
	var ue *UnknownSessionError
	if !errors.Is(err, ErrNotAuthenticated) || !errors.As(err, &ue) || ue.ID != "nope" {
		t.Errorf("Switch to an unknown id: %v", err)
	}
	if id, m, ok := r.Active(); !ok || id != "monitoring" || m != monitoring {
		t.Errorf("active = %q", id)
	}
	clk.advance(6 * time.Minute) // monitoring's tokens expire (5-min buffer)
	cleared, err := r.CleanupExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cleared, []string{"monitoring", "nocookie"}) {
		t.Errorf("cleared %v", cleared)
	}
	if !trading.IsSessionValid() || monitoring.HasSession() {
		t.Error("wrong sessions cleared")
	}
	if _, _, err := st.sibling("monitoring").Open(ctx); !errors.Is(err, backends.ErrNotFound) {
		t.Error("stored copy of an expired session kept")
	}
	m, err := r.Remove("monitoring")
	if err != nil || m != monitoring {
		t.Fatal(err)
	}
	m.Close(ctx)
	if _, _, ok := r.Active(); ok {
		t.Error("removed session still active")
	}
	if _, err := r.Get("monitoring"); !errors.Is(err, ErrNotAuthenticated) {
		t.Errorf("Get of a removed id: %v", err)
	}
}

func TestLogout(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	m := newTestManager(t, st)
	tok := tokens("a", "refresh-to-revoke", nil)
	defer tok.Destroy()
	m.CreateSession(ctx, tok, nil, nil)
	errNet := errors.New("revocation endpoint down")
	var got string
	err := m.Logout(ctx, func(_ context.Context, rt Secret) error {
		got = string(rt.Bytes())
		return errNet
	})
	var le *LogoutError
	if !errors.As(err, &le) || !errors.Is(err, errNet) || !m.HasSession() {
		t.Fatalf("failed revocation: %v, session kept: %v", err, m.HasSession())
	}
	if got != "refresh-to-revoke" {
		t.Errorf("revoke got %q", got)
	}
	m.mu.Lock()
	owned := secretBuffers(m.sess)
	m.mu.Unlock()
	revoked := false
	if err := m.Logout(ctx, func(context.Context, Secret) error { revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !revoked || m.HasSession() || !allZero(owned) {
		t.Error("logout did not revoke, clear and wipe")
	}
	if _, _, err := st.Open(ctx); !errors.Is(err, backends.ErrNotFound) {
		t.Error("stored copy kept after logout")
	}
	if err := m.Logout(ctx, func(context.Context, Secret) error { return nil }); !errors.Is(err, ErrNotAuthenticated) {
		t.Errorf("logout without session: %v", err)
	}
}
