package session

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func jwtWith(payload string) Secret {
	enc := base64.RawURLEncoding
	return NewSecret([]byte(enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"))
}

func TestJWTExpiry(t *testing.T) {
	for _, c := range []struct {
		tok  Secret
		want int64
		ok   bool
	}{
		{jwtWith(`{"exp":1577836800}`), 1577836800, true},
		{jwtWith(`{"sub":"x","exp":4070908800.5,"n":[1,2]}`), 4070908800, true},
		{jwtWith(`{"sub":"x"}`), 0, false},
		{jwtWith(`{"exp":"soon"}`), 0, false},
		{jwtWith(`{"exp":1e300}`), 0, false},
		{jwtWith(`{"exp":-1e300}`), 0, false},
		{jwtWith(`not json`), 0, false},
		{NewSecret([]byte("opaque-refresh-token")), 0, false},
		{NewSecret([]byte("a.b")), 0, false},
		{NewSecret([]byte("a.!!!.c")), 0, false},
		{NewSecret([]byte("a.b.c.d")), 0, false},
		{NewSecret([]byte(strings.Repeat("a.", 40000))), 0, false},
		{Secret{}, 0, false},
	} {
		got, ok := JWTExpiry(c.tok)
		if ok != c.ok || (ok && got.Unix() != c.want) {
			t.Errorf("JWTExpiry = %v, %v; want %d, %v", got, ok, c.want, c.ok)
		}
	}
}

func TestUnrevivable(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	for _, c := range []struct {
		name    string
		access  string
		refresh Secret
		exp     *time.Time
		dead    bool
	}{
		{"valid access, no refresh", "a", Secret{}, &future, false},
		{"valid access token, no expiry", "a", Secret{}, nil, false},
		{"expired, opaque refresh", "a", NewSecret([]byte("r")), &past, false},
		{"expired, no refresh", "a", Secret{}, &past, true},
		{"expired, live JWT refresh", "a", jwtWith(`{"exp":4070908800}`), &past, false},
		{"expired, dead JWT refresh", "a", jwtWith(`{"exp":1577836800}`), &past, true},
		{"no access, no refresh", "", Secret{}, nil, true},
		{"expires exactly now", "a", Secret{}, &now, true},
	} {
		s := &AuthSession{Tokens: AuthTokens{AccessToken: NewSecret([]byte(c.access)), RefreshToken: c.refresh, ExpiresAt: c.exp}}
		reason, dead := s.Unrevivable(now)
		if dead != c.dead || (dead && reason == "") || (!dead && reason != "") {
			t.Errorf("%s: %q, %v", c.name, reason, dead)
		}
	}
}
