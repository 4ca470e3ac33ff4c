package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const canary = "CANARY-tok3n-Zq9"

func TestSecretRedactsInFmt(t *testing.T) {
	s := NewSecret([]byte(canary))
	defer s.Destroy()
	ps := &s
	tok := tokens(canary, canary, nil)
	defer tok.Destroy()
	sess := newSession(tok, nil, authCookies(canary, canary), t0, "ua")
	defer sess.Destroy()
	sess.Cookies.Additional["x"] = NewSecret([]byte(canary))
	sess.TurnkeySession = &TurnkeySession{ClientSecret: NewSecret([]byte(canary))}
	values := []any{s, ps, tok, &tok, sess, *sess, sess.Cookies, sess.TurnkeySession, []Secret{s}, map[string]Secret{"k": s}}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%T", "%10s", "%-5v", "%p"}
	for _, v := range values {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, canary) || strings.Contains(out, fmt.Sprintf("%x", canary)) ||
				strings.Contains(out, fmt.Sprintf("%X", canary)) || strings.Contains(out, fmt.Sprint([]byte(canary))) {
				t.Errorf("fmt %s of %T leaks: %s", verb, v, out)
			}
		}
	}
	if got := fmt.Sprint(s); got != "[REDACTED]" {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%#v", s); got != "session.Secret([REDACTED])" {
		t.Errorf("%%#v = %q", got)
	}
	if got := s.GoString(); got != "session.Secret([REDACTED])" {
		t.Errorf("GoString = %q", got)
	}
	err := fmt.Errorf("wrapped: %v / %w", s, errors.New("x"))
	if strings.Contains(err.Error(), canary) {
		t.Error("error string leaks")
	}
}

func TestSecretRedactsInSlogAndJSON(t *testing.T) {
	s := NewSecret([]byte(canary))
	defer s.Destroy()
	tok := tokens(canary, canary, nil)
	defer tok.Destroy()
	sess := newSession(tok, nil, authCookies(canary, canary), t0, "ua")
	defer sess.Destroy()
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("msg", "secret", s, "ptr", &s, "tokens", tok, "session", sess, slog.Any("any", s), slog.Group("g", "s", s))
	}
	if bytes.Contains(buf.Bytes(), []byte(canary)) {
		t.Errorf("slog leaks: %s", buf.String())
	}
	if !bytes.Contains(buf.Bytes(), []byte("[REDACTED]")) {
		t.Errorf("slog output lacks [REDACTED]: %s", buf.String())
	}
	for _, v := range []any{s, &s, tok, sess, sess.Cookies} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		if bytes.Contains(out, []byte(canary)) {
			t.Errorf("encoding/json leaks %T: %s", v, out)
		}
	}
	var back Secret
	if err := json.Unmarshal([]byte(`"x"`), &back); err == nil {
		t.Error("encoding/json decoded a Secret")
	}
	for _, v := range []any{&AuthSession{}, &AuthTokens{}, &AuthCookies{}, &TurnkeySession{}} {
		if err := json.Unmarshal(readGolden(t), v); err == nil {
			t.Errorf("encoding/json decoded a %T (it would leave string copies)", v)
		}
	}
	// MarshalJSON of a session is its axiomtrade-rs shape, redacted.
	out, err := json.Marshal(sess)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"access_token":"[REDACTED]"`)) || !bytes.Contains(out, []byte(`"user_agent":"ua"`)) {
		t.Errorf("json.Marshal(session) = %s", out)
	}
}

func TestSecretBasics(t *testing.T) {
	src := []byte("abc")
	s := NewSecret(src)
	src[0] = 'X'
	if string(s.Bytes()) != "abc" {
		t.Error("NewSecret does not copy")
	}
	c := s.Clone()
	if !s.Equal(c) || &c.Bytes()[0] == &s.Bytes()[0] {
		t.Error("Clone")
	}
	buf := s.Bytes()
	s.Destroy()
	if !bytes.Equal(buf, []byte{0, 0, 0}) || !s.IsEmpty() || s.Len() != 0 {
		t.Error("Destroy did not wipe")
	}
	if string(c.Bytes()) != "abc" {
		t.Error("Destroy reached the clone")
	}
	s.Destroy() // twice
	var nilp *Secret
	nilp.Destroy()
	if NewSecret(nil).Bytes() != nil {
		t.Error("NewSecret(nil) not empty")
	}
	if s.Equal(c) {
		t.Error("Equal after Destroy")
	}
}

// secretBuffers collects every secret buffer a session holds, so a test
// can check that they are zeroed later.
func secretBuffers(s *AuthSession) [][]byte {
	var bufs [][]byte
	add := func(x *Secret) {
		if x != nil && x.Len() > 0 {
			bufs = append(bufs, x.Bytes())
		}
	}
	add(&s.Tokens.AccessToken)
	add(&s.Tokens.RefreshToken)
	add(s.Cookies.AuthAccessToken)
	add(s.Cookies.AuthRefreshToken)
	for _, v := range s.Cookies.Additional {
		add(&v)
	}
	if s.TurnkeySession != nil {
		add(&s.TurnkeySession.ClientSecret)
	}
	return bufs
}

func allZero(bufs [][]byte) bool {
	for _, b := range bufs {
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
	}
	return true
}

// fullSession makes a Manager hold every kind of secret, including a
// pending cookie delta (auto-save off, so it stays pending).
func fullSession(t *testing.T, m *Manager) (owned [][]byte) {
	t.Helper()
	ctx := ctxT(t)
	exp := t0.Add(time.Hour)
	tok := tokens("access-"+canary, "refresh-"+canary, &exp)
	defer tok.Destroy()
	res := LoginResult{Tokens: tok, TurnkeyCredentials: &TurnkeyCredentials{UserID: "u", ClientSecret: NewSecret([]byte("tk-" + canary))}}
	defer res.TurnkeyCredentials.Destroy()
	c := authCookies("ca-"+canary, "cr-"+canary)
	defer c.Destroy()
	if err := m.CreateSessionFromLoginResult(ctx, res, c); err != nil {
		t.Fatal(err)
	}
	delta := AuthCookies{Additional: map[string]Secret{"extra": NewSecret([]byte("ex-" + canary))}}
	defer delta.Destroy()
	if err := m.UpdateCookies(ctx, delta); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	owned = secretBuffers(m.sess)
	if m.pend.cookies != nil {
		owned = append(owned, secretBuffers(&AuthSession{Cookies: *m.pend.cookies})...)
	}
	want := 6 // 2 tokens, 2 auth cookies, 1 additional cookie, the Turnkey secret
	if !m.cfg.autoSave {
		want++ // the unsaved cookie delta
	}
	if len(owned) != want {
		t.Fatalf("%d secret buffers, want %d", len(owned), want)
	}
	if allZero(owned) {
		t.Fatal("buffers zero before cleanup")
	}
	return owned
}

func TestClearSessionWipesBuffers(t *testing.T) {
	for _, auto := range []bool{true, false} {
		m := newTestManager(t, newTestStore(t), WithAutoSave(auto))
		owned := fullSession(t, m)
		if err := m.ClearSession(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if !allZero(owned) {
			t.Errorf("auto-save %v: ClearSession left secret bytes in the Manager's buffers", auto)
		}
	}
}

func TestCloseWipesBuffers(t *testing.T) {
	for _, auto := range []bool{true, false} {
		m := newTestManager(t, newTestStore(t), WithAutoSave(auto))
		owned := fullSession(t, m)
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !allZero(owned) {
			t.Errorf("auto-save %v: Close left secret bytes in the Manager's buffers", auto)
		}
	}
}

func TestUpdatesWipeReplacedBuffers(t *testing.T) {
	m := newTestManager(t, newTestStore(t))
	ctx := ctxT(t)
	owned := fullSession(t, m)
	_ = owned
	m.mu.Lock()
	oldTokens := [][]byte{m.sess.Tokens.AccessToken.Bytes(), m.sess.Tokens.RefreshToken.Bytes()}
	oldTurnkey := m.sess.TurnkeySession.ClientSecret.Bytes()
	oldCookie := m.sess.Cookies.AuthAccessToken.Bytes()
	m.mu.Unlock()
	tok := tokens("n", "n", nil)
	defer tok.Destroy()
	if err := m.UpdateTokens(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateTurnkeySession(ctx, TurnkeySession{ClientSecret: NewSecret([]byte("n"))}); err != nil {
		t.Fatal(err)
	}
	c := AuthCookies{AuthAccessToken: optSecret([]byte("n"))}
	defer c.Destroy()
	if err := m.UpdateCookies(ctx, c); err != nil {
		t.Fatal(err)
	}
	if !allZero(oldTokens) || !allZero([][]byte{oldTurnkey, oldCookie}) {
		t.Error("replaced secrets not wiped")
	}
	// Copies handed out are independent and must be destroyed by the caller.
	snap, _ := m.Snapshot()
	bufs := secretBuffers(snap)
	snap.Destroy()
	if !allZero(bufs) {
		t.Error("Snapshot.Destroy did not wipe")
	}
	var lent []byte
	m.WithAccessToken(func(s Secret) error { lent = s.Bytes(); return nil })
	if !allZero([][]byte{lent}) {
		t.Error("WithAccessToken's copy not wiped after the callback")
	}
}
