package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/session"
)

// TestZeroValues checks what the doc comments say of zero values: the
// data types work empty (marshal, parse back, report, destroy), and a
// zero Registry takes Managers as NewRegistry's does.
func TestZeroValues(t *testing.T) {
	now := time.Now()
	var s session.AuthSession
	if s.IsValid(now) {
		t.Error("the zero AuthSession is valid")
	}
	data, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatalf("MarshalPlaintext of the zero AuthSession: %v", err)
	}
	back, err := session.ParseSession(data)
	if err != nil {
		t.Fatalf("ParseSession of the zero AuthSession's JSON: %v", err)
	}
	back.Destroy()
	_ = s.Summary(now)
	s.Destroy()

	var tok session.AuthTokens
	if tok.IsExpired(now) || tok.AccessToken.Len() != 0 {
		t.Error("the zero AuthTokens are expired or hold a token")
	}
	c := tok.Clone()
	c.Destroy()
	tok.Destroy()

	var ck session.AuthCookies
	if !ck.IsEmpty() || ck.HasAuthCookies() {
		t.Error("the zero AuthCookies are not empty")
	}
	if ck.Merge(session.AuthCookies{}) {
		t.Error("merging two zero AuthCookies changed something")
	}
	ck.Destroy()

	var ts session.TurnkeySession
	if ts.NeedsRefresh(now) {
		t.Error("the zero TurnkeySession needs a refresh (it never expires)")
	}
	ts.Clone().Destroy()
	ts.Destroy()

	// The zero LoginResult (empty tokens, no credentials, no user)
	// creates a session, as any LoginResult does.
	ctx := context.Background()
	lm, err := session.NewManager(ctx, newExampleStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := lm.CreateSessionFromLoginResult(ctx, session.LoginResult{}, nil); err != nil {
		t.Errorf("CreateSessionFromLoginResult of the zero LoginResult: %v", err)
	}
	lm.Close(ctx)

	// A zero Registry.
	var r session.Registry
	m, err := session.NewManager(ctx, newExampleStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add("a", m); err != nil {
		t.Fatalf("Add to a zero Registry: %v", err)
	}
	if id, got, ok := r.Active(); !ok || id != "a" || got != m {
		t.Errorf("Active of a zero Registry after Add: %q %v %v", id, got, ok)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
