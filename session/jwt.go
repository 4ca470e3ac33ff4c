package session

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"time"
)

// JWTExpiry returns the "exp" claim of tok when tok is a JWT (three
// base64url parts, the second a JSON object with a numeric exp), decoded
// WITHOUT verifying the signature: it says when the issuer meant the
// token to stop working, which is enough to tell a dead refresh token
// from one worth trying (vaultctl gc), and nothing more. It returns false
// for anything else: an opaque token, a malformed one, no exp. The
// decoded claims are wiped; the cost is bounded by the token's length.
func JWTExpiry(tok Secret) (time.Time, bool) {
	b := tok.bytes()
	if len(b) == 0 || len(b) > maxStringLen {
		return time.Time{}, false
	}
	first := indexByte(b, '.')
	if first < 0 {
		return time.Time{}, false
	}
	rest := b[first+1:]
	second := indexByte(rest, '.')
	if second < 0 || indexByte(rest[second+1:], '.') >= 0 {
		return time.Time{}, false
	}
	payload := rest[:second]
	enc := base64.RawURLEncoding
	if len(payload) > 0 && payload[len(payload)-1] == '=' {
		enc = base64.URLEncoding
	}
	claims := make([]byte, enc.DecodedLen(len(payload)))
	defer wipe(claims)
	n, err := enc.Decode(claims, payload)
	if err != nil {
		return time.Time{}, false
	}
	// Only exp is decoded: encoding/json skips the other claims without
	// making strings of them.
	var c struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(claims[:n], &c); err != nil || c.Exp == nil {
		return time.Time{}, false
	}
	f, err := c.Exp.Float64()
	if err != nil || math.IsNaN(f) || f < minUnix || f > maxUnix {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// The range of exp JWTExpiry accepts: the years the session format holds
// (0000-9999).
const (
	minUnix = -62167219200 // 0000-01-01T00:00:00Z
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

// Unrevivable reports whether the session can never be used again
// without a new login, and why: its access token is empty or past its
// expires_at (no buffer), and its refresh token is empty or is a JWT
// whose exp (JWTExpiry, unverified) has passed. A session with a usable
// access token, or with a refresh token that might still work (any opaque
// one), is revivable, whatever its cookies: a just-imported session with
// valid tokens and no auth cookies is kept. This is the rule of vaultctl
// gc.
func (s *AuthSession) Unrevivable(now time.Time) (reason string, dead bool) {
	accessOK := !s.Tokens.AccessToken.IsEmpty() && (s.Tokens.ExpiresAt == nil || now.Before(*s.Tokens.ExpiresAt))
	if accessOK {
		return "", false
	}
	what := "access token expired"
	if s.Tokens.AccessToken.IsEmpty() {
		what = "no access token"
	}
	if s.Tokens.RefreshToken.IsEmpty() {
		return what + ", no refresh token", true
	}
	exp, ok := JWTExpiry(s.Tokens.RefreshToken)
	if !ok || now.Before(exp) {
		return "", false
	}
	return what + ", refresh token expired " + exp.Format(time.RFC3339) + " (JWT exp)", true
}
