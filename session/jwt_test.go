package session

import (
	"encoding/base64"
	"math"
	"strconv"
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

// TestAgeExtremes: the summary's minutes are right for timestamps further
// apart than a time.Duration holds (292 years), in both directions.
func TestAgeExtremes(t *testing.T) {
	y0 := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	y9999 := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		from, to time.Time
		want     int64
	}{
		{y0, y9999, (y9999.Unix() - y0.Unix()) / 60},
		{y9999, y0, -((y9999.Unix() - y0.Unix()) / 60)},
		{y0, now, (now.Unix() - y0.Unix()) / 60},
		{now.Add(-59*time.Second - 999*time.Millisecond), now, 0},
		{now.Add(-60 * time.Second), now, 1},
		{now.Add(-time.Minute - time.Nanosecond), now, 1},
		{now.Add(59*time.Second + 999*time.Millisecond), now, 0},
		{now.Add(60*time.Second + time.Nanosecond), now, -1},
		{now, now, 0},
	} {
		md := SessionMetadata{CreatedAt: c.from, LastAPICallAt: &c.from}
		if got := md.AgeMinutes(c.to); got != c.want {
			t.Errorf("AgeMinutes from %v to %v = %d, want %d", c.from, c.to, got, c.want)
		}
		if got, _ := md.MinutesSinceLastAPICall(c.to); got != c.want {
			t.Errorf("MinutesSinceLastAPICall from %v to %v = %d, want %d", c.from, c.to, got, c.want)
		}
	}
	// The summary line of a session created in year 0, read in 2026.
	exp := y9999
	s := &AuthSession{Tokens: AuthTokens{ExpiresAt: &exp}, Metadata: SessionMetadata{CreatedAt: y0, LastAPICallAt: &y0}}
	want := strconv.FormatInt((now.Unix()-y0.Unix())/60, 10)
	if sum := s.Summary(now); !strings.Contains(sum, "Age: "+want+"m") || !strings.Contains(sum, "Last API: "+want+"m ago") {
		t.Errorf("summary %q, want Age %sm", sum, want)
	}
	if (now.Unix()-y0.Unix())/60 <= int64(time.Duration(math.MaxInt64)/time.Minute) {
		t.Fatal("the test does not pass the time.Duration range")
	}
}
