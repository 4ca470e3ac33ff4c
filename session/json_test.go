package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

func readGolden(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/session-after-login.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenRoundTripsByteForByte(t *testing.T) {
	in := readGolden(t)
	s, err := ParseSession(in)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	out, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("round trip differs:\n--- in\n%s\n--- out\n%s", in, out)
	}
}

func TestGoldenValues(t *testing.T) {
	s, err := ParseSession(readGolden(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	at := func(sec, nsec int, h, m int, day int) time.Time {
		return time.Date(2025, 8, day, h, m, sec, nsec, time.UTC)
	}
	checks := []struct {
		name      string
		got, want time.Time
	}{
		{"tokens.expires_at", *s.Tokens.ExpiresAt, at(27, 918204311, 18, 29, 14)},
		{"turnkey.created_at", s.TurnkeySession.CreatedAt, at(28, 482990125, 17, 29, 14)},
		{"turnkey.expires_at", *s.TurnkeySession.ExpiresAt, time.Date(2025, 9, 13, 17, 29, 28, 482990402, time.UTC)},
		{"metadata.created_at", s.Metadata.CreatedAt, at(28, 482913067, 17, 29, 14)},
	}
	for _, c := range checks {
		if !c.got.Equal(c.want) || c.got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v (UTC)", c.name, c.got, c.want)
		}
	}
	if got := string(s.Tokens.AccessToken.Bytes()); got != "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoiYWNjZXNzIn0.FAKEsigA" {
		t.Errorf("access token = %q", got)
	}
	if s.Cookies.AuthAccessToken != nil || s.Cookies.AuthRefreshToken != nil {
		t.Error("auth cookies should be null")
	}
	if s.Cookies.GState == nil || *s.Cookies.GState != `{"i_l":0}` {
		t.Errorf("g_state = %v", s.Cookies.GState)
	}
	if s.Cookies.Additional == nil || len(s.Cookies.Additional) != 0 {
		t.Error("additional_cookies should be an empty, non-nil map")
	}
	if s.TurnkeySession.APIKeys == nil || len(s.TurnkeySession.APIKeys) != 0 {
		t.Error("api_keys should be an empty, non-nil list")
	}
	if s.UserInfo != nil {
		t.Error("user_info should be nil")
	}
	if got := string(s.TurnkeySession.ClientSecret.Bytes()); got != "RkFLRV9TQUxUX0ZBS0VfU0FMVF9GQUtFX1NBTFRfMzI=" {
		t.Errorf("client secret = %q", got)
	}
	if s.Metadata.LastRefreshedAt != nil || s.Metadata.LastAPICallAt != nil || s.Metadata.CurrentAPIServer != nil ||
		s.Metadata.IPAddress != nil || s.Metadata.ClientFingerprint != nil {
		t.Error("optional metadata should be nil")
	}
	if !s.Tokens.NeedsRefresh(at(27, 918204311, 18, 14, 14)) || s.Tokens.NeedsRefresh(at(27, 918204310, 18, 14, 14)) {
		t.Error("refresh window edge at expires_at - 15m")
	}
}

// TestGoldenMatchesEncodingJSON checks value for value against the
// standard library's reading of the same file (which sees the real token
// strings, since it decodes into plain maps).
func TestGoldenMatchesEncodingJSON(t *testing.T) {
	in := readGolden(t)
	s, err := ParseSession(in)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	out, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("values differ:\n%s\n%s", ja, jb)
	}
}

func TestTokensOnlyFile(t *testing.T) {
	in := []byte(`{"access_token": "a\u00e9\n", "refresh_token": "r", "expires_at": "2025-08-14T20:29:27.5+02:00"}`)
	now := time.Date(2025, 8, 14, 17, 0, 0, 0, time.UTC)
	s, err := decodeSession(in, now, "ua")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if string(s.Tokens.AccessToken.Bytes()) != "aé\n" || string(s.Tokens.RefreshToken.Bytes()) != "r" {
		t.Error("tokens not decoded")
	}
	if want := time.Date(2025, 8, 14, 18, 29, 27, 500_000_000, time.UTC); !s.Tokens.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v, want %v", s.Tokens.ExpiresAt, want)
	}
	if !s.Metadata.CreatedAt.Equal(now) || s.Metadata.UserAgent != "ua" || *s.Cookies.GState != defaultGState {
		t.Errorf("defaults not applied: %+v", s.Metadata)
	}
	// Without expires_at (the library's TokenManager from_env form).
	s2, err := ParseSession([]byte(`{"access_token":"a","refresh_token":"r"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s2.Tokens.ExpiresAt != nil {
		t.Error("missing expires_at should be nil")
	}
	s2.Destroy()
}

func TestTimeFractionDigits(t *testing.T) {
	for _, c := range []struct {
		ns   int
		want string
	}{
		{0, "2025-01-02T03:04:05Z"},
		{500_000_000, "2025-01-02T03:04:05.500Z"},
		{123_456_000, "2025-01-02T03:04:05.123456Z"},
		{1, "2025-01-02T03:04:05.000000001Z"},
		{999_999_999, "2025-01-02T03:04:05.999999999Z"},
	} {
		tm := time.Date(2025, 1, 2, 3, 4, 5, c.ns, time.UTC)
		got, err := appendTime(nil, tm)
		if err != nil || string(got) != c.want || timeLen(tm) != len(c.want) {
			t.Errorf("appendTime(%d ns) = %q, %v; want %q", c.ns, got, err, c.want)
		}
		back, err := parseTime(got)
		if err != nil || !back.Equal(tm) {
			t.Errorf("parseTime(%q) = %v, %v", got, back, err)
		}
	}
}

func TestParseTimeRejects(t *testing.T) {
	for _, in := range []string{
		"", "2025-01-02", "2025-01-02T03:04:05", "2025-02-30T00:00:00Z", "2025-01-02T24:00:00Z",
		"2025-01-02T03:04:60Z", "2025-01-02T03:04:05.Z", "2025-01-02T03:04:05.1234567890Z",
		"2025-01-02T03:04:05+0100", "2025-01-02T03:04:05+24:00", "2025-13-02T03:04:05Z",
		"0000-01-01T00:00:00+00:01", "+2025-01-02T03:04:05Z", "2025-01-02T03:04:05Zx", "2025-1-02T03:04:05Z",
	} {
		if _, err := parseTime([]byte(in)); err == nil {
			t.Errorf("parseTime(%q) succeeded", in)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	golden := string(readGolden(t))
	cases := map[string]string{
		"empty":            ``,
		"not object":       `[]`,
		"empty object":     `{}`,
		"trailing":         golden + `x`,
		"two objects":      golden + golden,
		"duplicate key":    strings.Replace(golden, `"user_info": null`, `"user_info": null, "user_info": null`, 1),
		"missing tokens":   `{"cookies":{"additional_cookies":{}},"session_metadata":{"created_at":"2025-01-01T00:00:00Z","user_agent":"x"}}`,
		"null token":       strings.Replace(golden, `"access_token": "eyJ`, `"access_token": null, "x": "eyJ`, 1),
		"number token":     `{"access_token": 1, "refresh_token": "r"}`,
		"missing refresh":  `{"access_token": "a"}`,
		"mixed shapes":     `{"access_token": "a", "refresh_token": "r", "tokens": {}}`,
		"bad escape":       `{"access_token": "a\x", "refresh_token": "r"}`,
		"lone surrogate":   `{"access_token": "\ud800", "refresh_token": "r"}`,
		"lone low":         `{"access_token": "\udc00", "refresh_token": "r"}`,
		"control char":     "{\"access_token\": \"a\tb\", \"refresh_token\": \"r\"}",
		"invalid utf8":     "{\"access_token\": \"a\xffb\", \"refresh_token\": \"r\"}",
		"unterminated":     `{"access_token": "abc`,
		"bad time":         `{"access_token": "a", "refresh_token": "r", "expires_at": "yesterday"}`,
		"null cookies map": strings.Replace(golden, `"additional_cookies": {}`, `"additional_cookies": null`, 1),
		"dup cookie":       strings.Replace(golden, `"additional_cookies": {}`, `"additional_cookies": {"a":"1","a":"2"}`, 1),
		"missing addl": strings.Replace(golden, `,
    "additional_cookies": {}`, ``, 1),
		"trailing comma":    `{"access_token": "a", "refresh_token": "r",}`,
		"nul literal":       `{"access_token": "a", "refresh_token": "r", "expires_at": nul}`,
		"api key not obj":   strings.Replace(golden, `"api_keys": []`, `"api_keys": [1]`, 1),
		"api keys trailing": strings.Replace(golden, `"api_keys": []`, `"api_keys": [,]`, 1),
	}
	for name, in := range cases {
		s, err := ParseSession([]byte(in))
		if err == nil {
			s.Destroy()
			t.Errorf("%s: decoded", name)
			continue
		}
		if !errors.Is(err, ErrInvalidSession) {
			t.Errorf("%s: error %v does not match ErrInvalidSession", name, err)
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: not a *DecodeError: %T", name, err)
		}
		if strings.Contains(err.Error(), "eyJ") || strings.Contains(err.Error(), "FAKE") {
			t.Errorf("%s: error quotes the input: %v", name, err)
		}
	}
}

func TestDecodeBounds(t *testing.T) {
	big := `{"access_token": "` + strings.Repeat("a", maxStringLen+1) + `", "refresh_token": "r"}`
	if _, err := ParseSession([]byte(big)); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("oversized string: %v", err)
	}
	huge := make([]byte, maxSessionJSON+1)
	if _, err := ParseSession(huge); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("oversized input: %v", err)
	}
	cookies := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"a0":"v"`)
		for i := 1; i < n; i++ {
			b.WriteString(`,"a` + strconv.Itoa(i) + `":"v"`)
		}
		b.WriteString(`}`)
		return []byte(strings.Replace(string(readGolden(t)), `"additional_cookies": {}`, `"additional_cookies": `+b.String(), 1))
	}
	if s, err := ParseSession(cookies(maxCookies)); err != nil {
		t.Errorf("%d cookies: %v", maxCookies, err)
	} else {
		s.Destroy()
	}
	_, err := ParseSession(cookies(maxCookies + 1))
	if !errors.Is(err, ErrInvalidSession) || !strings.Contains(err.Error(), "cookies.additional_cookies") {
		t.Errorf("too many cookies: %v", err)
	}
}

// TestDecodeErrorsNeverQuoteKeys: a broken file may hold a secret where a
// field name belongs. Errors about members this package does not know
// (kept otherwise: see TestUnknownMembersRoundTrip) give the offset and
// the path of the object, never the key or the value.
func TestDecodeErrorsNeverQuoteKeys(t *testing.T) {
	const secret = "eyJSECRETinsteadOfAName"
	golden := string(readGolden(t))
	many := ""
	for i := range maxUnknownMembers + 1 {
		many += `"` + secret + strconv.Itoa(i) + `": 1, `
	}
	cases := map[string]struct{ in, path, want string }{
		"bad value":     {strings.Replace(golden, `"user_info"`, `"`+secret+`": tru, "user_info"`, 1), "(unknown member)", "invalid literal"},
		"bad number":    {strings.Replace(golden, `"g_state"`, `"`+secret+`": 01, "g_state"`, 1), "cookies", "want ',' or '}'"},
		"duplicate":     {strings.Replace(golden, `"ip_address"`, `"`+secret+`": 1, "`+secret+`": 2, "ip_address"`, 1), "session_metadata", "duplicate unknown key"},
		"too deep":      {strings.Replace(golden, `"user_info"`, `"`+secret+`": `+strings.Repeat("[", maxUnknownDepth+2)+strings.Repeat("]", maxUnknownDepth+2)+`, "user_info"`, 1), "(unknown member)", "nested deeper"},
		"too many":      {strings.Replace(golden, `"user_info"`, many+`"user_info"`, 1), "", "unknown members"},
		"bad string":    {strings.Replace(golden, `"user_info"`, `"`+secret+`": {"a": "`+secret+"\x01"+`"}, "user_info"`, 1), "(unknown member)", "control character"},
		"tokens mixed":  {`{"access_token":"a","refresh_token":"r","tokens":{"` + secret + `":1}}`, "", "mixed shapes"},
		"session mixed": {strings.Replace(golden, `"user_info"`, `"access_token": "`+secret+`", "user_info"`, 1), "", "mixed shapes"},
		"turnkey":       {strings.Replace(golden, `"organization_id"`, `"`+secret+`"`, 1), "turnkey_session", `missing key "organization_id"`},
		"api key": {strings.Replace(golden, `"api_keys": []`, `"api_keys": [{"`+secret+`": 1}]`, 1),
			"turnkey_session.api_keys", `missing key "api_key_id"`},
		"duplicate cookie": {strings.Replace(golden, `"additional_cookies": {}`, `"additional_cookies": {"`+secret+`": "1", "`+secret+`": "2"}`, 1),
			"cookies.additional_cookies", "duplicate cookie name"},
	}
	for name, c := range cases {
		_, err := ParseSession([]byte(c.in))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "SECRET") || strings.Contains(msg, "eyJ") {
			t.Errorf("%s: the error quotes the input: %v", name, err)
		}
		var de *DecodeError
		if !errors.As(err, &de) || !strings.HasSuffix(de.Field, c.path) || de.Offset <= 0 {
			t.Errorf("%s: %#v, want a *DecodeError at the object %q", name, err, c.path)
		}
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, c.want)
		}
	}
}

// TestUnknownMembersRoundTrip: a file from a newer axiomtrade-rs, with
// members this package does not know in every object, opens, and writes
// back with each of them in its object, byte for byte; the redacted form
// hides their values.
func TestUnknownMembersRoundTrip(t *testing.T) {
	in, err := os.ReadFile("testdata/session-newer-axiomtrade.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSession(in)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	out, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	defer wipe(out)
	// Parsed by encoding/json, both have the same tree.
	var a, b any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("round trip changed the tree:\n%s", out)
	}
	for _, m := range []string{`"token_type": "Bearer"`, `"cf_clearance": "FAKE-cf-clearance-secret"`, `"scopes": ["trade", "read"]`,
		`"session_kind": {"type": "read_write", "ttl_s": 2592000, "refreshable": true, "ratio": -1.5e-3}`, `"tier": 3`,
		`"region": "eu-\u00e9"`, `"schema_version": 2`} {
		if !bytes.Contains(out, []byte(m)) {
			t.Errorf("output lacks %s", m)
		}
	}
	// A second pass writes the same bytes; the measured size is exact.
	s2, err := ParseSession(out)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Destroy()
	out2, _ := s2.MarshalPlaintext()
	defer wipe(out2)
	if !bytes.Equal(out, out2) {
		t.Error("second round trip differs")
	}
	if n, err := s.measure(); err != nil || n != len(out) {
		t.Errorf("measure = %d, %v; wrote %d", n, err, len(out))
	}
	// A clone carries them; destroying the original does not touch it.
	c := s.Clone()
	s2.Destroy()
	outc, _ := c.MarshalPlaintext()
	defer wipe(outc)
	c.Destroy()
	if !bytes.Equal(outc, out) {
		t.Error("a clone lost unknown members")
	}
	red, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(red, []byte("FAKE-cf-clearance")) || !bytes.Contains(red, []byte(`"cf_clearance":"[REDACTED]"`)) {
		t.Errorf("MarshalJSON shows an unknown member's value:\n%s", red)
	}
}

// TestUnknownMembersSurviveUpdates: members this package does not know
// stay in the stored session through a Manager's updates and a refresh.
func TestUnknownMembersSurviveUpdates(t *testing.T) {
	in, err := os.ReadFile("testdata/session-newer-axiomtrade.json")
	if err != nil {
		t.Fatal(err)
	}
	st := newTestStore(t)
	if _, err := st.Seal(ctxT(t), in, backends.Absent); err != nil {
		t.Fatal(err)
	}
	clk := newClock(t0)
	auth := &authServer{current: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoicmVmcmVzaCJ9.FAKEsigR", clock: clk.now}
	m := newTestManager(t, st, WithClock(clk.now), WithRefresher(auth.refresh))
	if err := m.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateCookies(ctxT(t), AuthCookies{Additional: map[string]Secret{"x": NewSecret([]byte("1"))}}); err != nil {
		t.Fatal(err)
	}
	m.MarkAPICall("api")
	if err := m.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pt, _, err := st.Open(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer wipe(pt)
	for _, want := range []string{`"token_type": "Bearer"`, `"cf_clearance"`, `"scopes"`, `"session_kind"`, `"tier": 3`, `"region"`, `"schema_version": 2`, `"access_token": "a1"`} {
		if !bytes.Contains(pt, []byte(want)) {
			t.Errorf("stored session lacks %s:\n%s", want, pt)
		}
	}
}

func TestEscapesRoundTrip(t *testing.T) {
	raw := "q\"b\\s/\b\f\n\r\t\x00\x1f\x7f é 😀 \u2028"
	tok := NewAuthTokens([]byte(raw), []byte("r"), nil)
	s := newSession(tok, nil, nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "ua")
	tok.Destroy()
	defer s.Destroy()
	out, err := s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	want := `"q\"b\\s/\b\f\n\r\t\u0000\u001f` + "\x7f é 😀 \u2028" + `"`
	if !bytes.Contains(out, []byte(want)) {
		t.Fatalf("escaping differs from serde_json:\n%s\nwant %s", out, want)
	}
	back, err := ParseSession(out)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Destroy()
	if string(back.Tokens.AccessToken.Bytes()) != raw {
		t.Error("escapes do not round-trip")
	}
	// Surrogate pairs and upper-case hex, as other writers emit them.
	s3, err := ParseSession([]byte(`{"access_token":"\uD83D\uDE00\u00E9\/","refresh_token":"r"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(s3.Tokens.AccessToken.Bytes()) != "😀é/" {
		t.Errorf("got %q", s3.Tokens.AccessToken.Bytes())
	}
	s3.Destroy()
}

func TestEncodeRefusesInvalid(t *testing.T) {
	tok := NewAuthTokens([]byte{0xff, 0xfe}, []byte("r"), nil)
	s := newSession(tok, nil, nil, time.Now(), "ua")
	if _, err := s.MarshalPlaintext(); !errors.Is(err, ErrInvalidSession) || !strings.Contains(err.Error(), "access_token") {
		t.Errorf("invalid UTF-8 token: %v", err)
	}
	s.Destroy()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	tok = NewAuthTokens([]byte("a"), []byte("r"), &far)
	s = newSession(tok, nil, nil, time.Now(), "ua")
	if _, err := s.MarshalPlaintext(); !errors.Is(err, ErrInvalidSession) || !strings.Contains(err.Error(), "expires_at") {
		t.Errorf("year 10000: %v", err)
	}
	s.Destroy()
}

// TestEncoderGrowthWipes checks that a buffer the encoder outgrows is
// wiped, so no partial plaintext is left for the garbage collector.
func TestEncoderGrowthWipes(t *testing.T) {
	e := encoder{buf: make([]byte, 0, 8)}
	old := e.buf[:cap(e.buf)]
	e.raw("secret!!")
	e.raw("more")
	if !bytes.Equal(old, make([]byte, 8)) {
		t.Errorf("outgrown buffer not wiped: %q", old)
	}
	if string(e.buf) != "secret!!more" {
		t.Errorf("buf = %q", e.buf)
	}
}
