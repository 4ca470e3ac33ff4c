package benchmarks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// RealisticSize is the size of the session the comparative benchmarks store:
// an axiomtrade-rs session after login with both auth cookies and a Turnkey
// session, tokens of the length that API issues, compact JSON.
const RealisticSize = 2048

// MinSessionSize is the smallest size SessionJSON can produce: the
// tokens-only shape with one-character tokens.
const MinSessionSize = 86

// SessionJSON returns a session in the axiomtrade-rs JSON shape, exactly size
// bytes long. Sizes from about 1.4 KiB up give the full shape (tokens, cookies,
// Turnkey session, user info, metadata), its access token or, past the
// largest realistic token, an additional cookie grown to fill the size; smaller
// sizes give the tokens-only shape that axiomtrade-rs also writes. The token
// bytes are pseudo-random (seeded, so every run stores the same bytes) base64url
// text, as incompressible as real JWTs. It panics if size < MinSessionSize.
func SessionJSON(size int) []byte {
	if size < MinSessionSize {
		panic(fmt.Sprintf("benchmarks: session size %d below minimum %d", size, MinSessionSize))
	}
	r := rand.New(rand.NewPCG(uint64(size), 0x5e55))
	full := fullSession(r, 1)
	if len(full) <= size {
		return fillFull(r, size)
	}
	return fillTokensOnly(r, size)
}

// maxTokenLen caps the access token at the length of a large real JWT; past
// it, the filler goes into an additional cookie instead.
const maxTokenLen = 1500

func fillFull(r *rand.Rand, size int) []byte {
	base := len(fullSession(r, 1))
	need := size - base + 1
	if need <= maxTokenLen {
		b := fullSession(r, need)
		mustLen(b, size)
		return b
	}
	// Leave room for the cookie's own syntax so that extra always fits.
	accessLen := maxTokenLen - cookieOverhead
	extra := size - len(fullSessionExtra(r, accessLen, 0))
	b := fullSessionExtra(r, accessLen, extra)
	mustLen(b, size)
	return b
}

// cookieOverhead is what one filler cookie adds around its value: the map
// entry `"c0000":""`; entries after the first add a comma too.
const cookieOverhead = len(`"c0000":""`)

// maxCookieValue is the (approximate: the last one takes the remainder)
// size of each filler cookie: twice what a browser keeps for one cookie,
// so that a 1 MiB session stays within the session package's limits
// (strings up to 64 KiB, maps up to 256 members) with room to spare.
const maxCookieValue = 8000

func fillTokensOnly(r *rand.Rand, size int) []byte {
	base := len(tokensOnly(r, 1))
	b := tokensOnly(r, size-base+1)
	mustLen(b, size)
	return b
}

func mustLen(b []byte, size int) {
	if len(b) != size {
		panic(fmt.Sprintf("benchmarks: generated %d bytes, want %d", len(b), size))
	}
}

// token returns n pseudo-random base64url characters.
func token(r *rand.Rand, n int) string {
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	s := base64.RawURLEncoding.EncodeToString(raw)
	return s[:n]
}

// jwtLike returns a three-part token of exactly n characters (n >= 5).
func jwtLike(r *rand.Rand, n int) string {
	if n < 5 {
		return token(r, n)
	}
	body := n - 2
	h := body / 5
	s := body / 4
	return token(r, h) + "." + token(r, body-h-s) + "." + token(r, s)
}

type tokensJSON struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresAt    string `json:"expires_at"`
}

type cookiesJSON struct {
	AuthAccessToken   *string           `json:"auth_access_token"`
	AuthRefreshToken  *string           `json:"auth_refresh_token"`
	GState            *string           `json:"g_state"`
	AdditionalCookies map[string]string `json:"additional_cookies"`
}

type apiKeyJSON struct {
	APIKeyID   string  `json:"api_key_id"`
	APIKeyName string  `json:"api_key_name"`
	PublicKey  string  `json:"public_key"`
	KeyType    string  `json:"key_type"`
	CreatedAt  string  `json:"created_at"`
	ExpiresAt  *string `json:"expires_at"`
}

type turnkeyJSON struct {
	OrganizationID string       `json:"organization_id"`
	UserID         string       `json:"user_id"`
	Username       string       `json:"username"`
	ClientSecret   string       `json:"client_secret"`
	APIKeys        []apiKeyJSON `json:"api_keys"`
	CreatedAt      string       `json:"created_at"`
	ExpiresAt      string       `json:"expires_at"`
}

type userInfoJSON struct {
	ID       string  `json:"id"`
	Email    string  `json:"email"`
	Username *string `json:"username"`
}

type metadataJSON struct {
	CreatedAt         string  `json:"created_at"`
	LastRefreshedAt   *string `json:"last_refreshed_at"`
	LastAPICallAt     *string `json:"last_api_call_at"`
	CurrentAPIServer  *string `json:"current_api_server"`
	UserAgent         string  `json:"user_agent"`
	IPAddress         *string `json:"ip_address"`
	ClientFingerprint *string `json:"client_fingerprint"`
}

type sessionJSON struct {
	Tokens         tokensJSON    `json:"tokens"`
	Cookies        cookiesJSON   `json:"cookies"`
	TurnkeySession *turnkeyJSON  `json:"turnkey_session"`
	UserInfo       *userInfoJSON `json:"user_info"`
	Metadata       metadataJSON  `json:"session_metadata"`
}

func fullSession(r *rand.Rand, accessLen int) []byte {
	return fullSessionExtra(r, accessLen, 0)
}

// fullSessionExtra builds the full shape with an access token of accessLen
// characters and, when extra > 0, additional cookies that make the whole
// document extra bytes longer than it would be without them.
func fullSessionExtra(r *rand.Rand, accessLen, extra int) []byte {
	ptr := func(s string) *string { return &s }
	access := jwtLike(r, accessLen)
	refresh := jwtLike(r, 180)
	s := sessionJSON{
		Tokens: tokensJSON{
			AccessToken:  access,
			RefreshToken: refresh,
			ExpiresAt:    "2025-08-14T18:29:27.918204311Z",
		},
		Cookies: cookiesJSON{
			AuthAccessToken:   ptr(token(r, 64)),
			AuthRefreshToken:  ptr(refresh[:64]),
			GState:            ptr(`{"i_l":0}`),
			AdditionalCookies: map[string]string{},
		},
		TurnkeySession: &turnkeyJSON{
			OrganizationID: "5f1e2d3c-0000-4fak-e000-0000000000aa",
			UserID:         "a1b2c3d4-0000-4fak-e000-0000000000bb",
			Username:       "user_a1b2c3d4",
			ClientSecret:   token(r, 44),
			APIKeys: []apiKeyJSON{{
				APIKeyID:   "c0ffee00-0000-4fak-e000-0000000000cc",
				APIKeyName: "bot-key-1",
				PublicKey:  token(r, 66),
				KeyType:    "API_KEY_CURVE_P256",
				CreatedAt:  "2025-08-14T17:29:28.482990125Z",
			}},
			CreatedAt: "2025-08-14T17:29:28.482990125Z",
			ExpiresAt: "2025-09-13T17:29:28.482990402Z",
		},
		UserInfo: &userInfoJSON{
			ID:       "a1b2c3d4-0000-4fak-e000-0000000000bb",
			Email:    "bot@example.com",
			Username: ptr("user_a1b2c3d4"),
		},
		Metadata: metadataJSON{
			CreatedAt:        "2025-08-14T17:29:28.482913067Z",
			LastRefreshedAt:  ptr("2025-08-14T17:44:28.482913067Z"),
			LastAPICallAt:    ptr("2025-08-14T17:59:28.482913067Z"),
			CurrentAPIServer: ptr("api6.axiom.trade"),
			UserAgent:        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		},
	}
	if extra > 0 {
		// k cookies take k*cookieOverhead + (k-1) commas + their values.
		k := (extra + maxCookieValue + cookieOverhead) / (maxCookieValue + cookieOverhead + 1)
		k = max(k, 1)
		values := max(extra-k*cookieOverhead-(k-1), 0)
		for i := range k {
			n := min(values, maxCookieValue)
			if i == k-1 {
				n = values
			}
			values -= n
			s.Cookies.AdditionalCookies[fmt.Sprintf("c%04d", i)] = token(r, n)
		}
	}
	return marshal(s)
}

func tokensOnly(r *rand.Rand, accessLen int) []byte {
	return marshal(tokensJSON{
		AccessToken:  token(r, accessLen),
		RefreshToken: token(r, 1),
		ExpiresAt:    "2025-08-14T18:29:27.918204311Z",
	})
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // static types only: cannot fail
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// describe is used in test failure messages only.
func describe(b []byte) string {
	if len(b) > 200 {
		return strings.ToValidUTF8(string(b[:200]), "?") + "..."
	}
	return string(b)
}
