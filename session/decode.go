package session

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The decoder reads exactly the axiomtrade-rs session shape (or its
// tokens-only file) with a hand-written scanner, so that every secret is
// unescaped straight from the input into a fresh buffer of exact size:
// encoding/json would first make a Go string of it, which can never be
// wiped. The caller wipes the input afterwards.
//
// It is strict: duplicate keys, wrong types, trailing data, invalid
// UTF-8, lone surrogates and times that are not RFC 3339 are errors, and
// every size is bounded (limits.go). Members it does not know are kept,
// checked and bounded, and written back (unknown.go), as serde ignores
// them: a newer axiomtrade-rs's file round-trips. Following serde's derive,
// an optional field may be absent (read as null) and a required one may
// not. Errors give an offset and a field path (names of the format, never
// a key read from the input), never the input bytes.

// ParseSession decodes a session from its axiomtrade-rs JSON form. It also
// accepts a tokens-only file {access_token, refresh_token, expires_at}
// (what that library's TokenManager writes), which becomes a new session
// created now with default cookies and DefaultUserAgent. The caller still
// owns data and should wipe it. Errors match ErrInvalidSession.
func ParseSession(data []byte) (*AuthSession, error) {
	return decodeSession(data, time.Now(), DefaultUserAgent)
}

func decodeSession(data []byte, now time.Time, userAgent string) (*AuthSession, error) {
	d := decoder{data: data}
	if len(data) > maxSessionJSON {
		return nil, d.errorf("session is %d bytes, more than the limit of %d", len(data), maxSessionJSON)
	}
	s := &AuthSession{}
	if err := d.top(s, now, userAgent); err != nil {
		s.Destroy()
		return nil, err
	}
	d.ws()
	if d.off != len(d.data) {
		s.Destroy()
		return nil, d.errorf("data after the session object")
	}
	return s, nil
}

type decoder struct {
	data  []byte
	off   int
	path  [8]string
	depth int
	// keyStart and keyEnd delimit the quoted key object just read, for
	// a member kept as unknown.
	keyStart, keyEnd int
}

func (d *decoder) errorf(format string, args ...any) error {
	return &DecodeError{Offset: d.off, Field: strings.Join(d.path[:d.depth], "."), Reason: sprintf(format, args...)}
}

func (d *decoder) push(name string) {
	if d.depth < len(d.path) {
		d.path[d.depth] = name
	}
	d.depth++
}

func (d *decoder) pop() { d.depth-- }

func (d *decoder) ws() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte without consuming it.
func (d *decoder) next() (byte, bool) {
	d.ws()
	if d.off >= len(d.data) {
		return 0, false
	}
	return d.data[d.off], true
}

func (d *decoder) expect(c byte) error {
	b, ok := d.next()
	if !ok {
		return d.errorf("unexpected end of data, want %q", c)
	}
	if b != c {
		return d.errorf("want %q", c)
	}
	d.off++
	return nil
}

// null consumes a null literal if one is next.
func (d *decoder) null() (bool, error) {
	b, ok := d.next()
	if !ok || b != 'n' {
		return false, nil
	}
	if len(d.data)-d.off < 4 || string(d.data[d.off:d.off+4]) != "null" {
		return false, d.errorf("invalid literal")
	}
	d.off += 4
	return true, nil
}

// object reads an object, calling member for each key with the decoder
// positioned at the value. It refuses more than limit members.
func (d *decoder) object(limit int, member func(key []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if b, ok := d.next(); ok && b == '}' {
		d.off++
		return nil
	}
	for n := 0; ; n++ {
		if n == limit {
			return d.errorf("more than %d members", limit)
		}
		if b, ok := d.next(); !ok || b != '"' {
			return d.errorf("want a string key")
		}
		d.keyStart = d.off
		key, err := d.str()
		if err != nil {
			return err
		}
		d.keyEnd = d.off
		err = d.expect(':')
		if err != nil {
			wipe(key)
			return err
		}
		err = member(key)
		wipe(key) // a cookie name may be a secret
		if err != nil {
			return err
		}
		b, ok := d.next()
		if !ok {
			return d.errorf("unexpected end of data in an object")
		}
		d.off++
		switch b {
		case ',':
		case '}':
			return nil
		default:
			d.off--
			return d.errorf("want ',' or '}'")
		}
	}
}

// fields tracks which members of a struct were seen.
type fields struct {
	names []string
	seen  uint32
}

// mark records key and returns its index, refusing duplicate keys. An
// unknown key is kept in *extra with its value (see unknown.go) and mark
// returns -1; a caller then returns err.
func (f *fields) mark(d *decoder, key []byte, extra **members) (int, error) {
	if i := f.index(key); i >= 0 {
		if f.seen&(1<<i) != 0 {
			return 0, d.errorf("duplicate key %q", f.names[i])
		}
		f.seen |= 1 << i
		return i, nil
	}
	return -1, d.unknown(extra)
}

func (f *fields) index(key []byte) int {
	for i, n := range f.names {
		if string(key) == n {
			return i
		}
	}
	return -1
}

// require fails if a required field (by index) is missing.
func (f *fields) require(d *decoder, idx ...int) error {
	for _, i := range idx {
		if f.seen&(1<<i) == 0 {
			return d.errorf("missing key %q", f.names[i])
		}
	}
	return nil
}

// str reads a JSON string into a new buffer of exactly its unescaped
// length. The input is read twice (validate and measure, then copy) so
// that no other buffer ever holds the value.
func (d *decoder) str() ([]byte, error) {
	if b, ok := d.next(); !ok || b != '"' {
		return nil, d.errorf("want a string")
	}
	start := d.off + 1
	n, end, err := d.scanString(start)
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	unescape(out, d.data[start:end])
	d.off = end + 1
	return out, nil
}

// scanString validates the string body starting at i and returns its
// unescaped length and the index of the closing quote.
func (d *decoder) scanString(i int) (n, end int, err error) {
	data := d.data
	fail := func(at int, reason string) (int, int, error) {
		d.off = at
		return 0, 0, d.errorf("%s", reason)
	}
	for {
		if n > maxStringLen {
			return fail(i, sprintf("string longer than %d bytes", maxStringLen))
		}
		if i >= len(data) {
			return fail(i, "unterminated string")
		}
		c := data[i]
		switch {
		case c == '"':
			return n, i, nil
		case c == '\\':
			if i+1 >= len(data) {
				return fail(i, "unterminated escape")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				n++
				i += 2
			case 'u':
				r, size, ok := readUnicodeEscape(data[i:])
				if !ok {
					return fail(i, "invalid \\u escape or lone surrogate")
				}
				n += utf8.RuneLen(r)
				i += size
			default:
				return fail(i, "invalid escape")
			}
		case c < 0x20:
			return fail(i, "control character in string")
		case c < utf8.RuneSelf:
			n++
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return fail(i, "invalid UTF-8")
			}
			n += size
			i += size
		}
	}
}

// unescape writes the unescaped form of the validated string body src
// into dst, which has exactly the right length.
func unescape(dst, src []byte) {
	j := 0
	for i := 0; i < len(src); {
		c := src[i]
		if c != '\\' {
			dst[j] = c
			i++
			j++
			continue
		}
		switch src[i+1] {
		case 'b':
			dst[j] = '\b'
		case 'f':
			dst[j] = '\f'
		case 'n':
			dst[j] = '\n'
		case 'r':
			dst[j] = '\r'
		case 't':
			dst[j] = '\t'
		case 'u':
			r, size, _ := readUnicodeEscape(src[i:])
			j += utf8.EncodeRune(dst[j:], r)
			i += size
			continue
		default: // '"', '\\', '/'
			dst[j] = src[i+1]
		}
		i += 2
		j++
	}
}

// readUnicodeEscape reads \uXXXX, or a surrogate pair \uXXXX\uXXXX, at the
// start of b. It refuses lone surrogates, as serde_json does.
func readUnicodeEscape(b []byte) (r rune, size int, ok bool) {
	hex4 := func(b []byte) (rune, bool) {
		if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
			return 0, false
		}
		var v rune
		for _, c := range b[2:6] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= rune(c - '0')
			case c >= 'a' && c <= 'f':
				v |= rune(c-'a') + 10
			case c >= 'A' && c <= 'F':
				v |= rune(c-'A') + 10
			default:
				return 0, false
			}
		}
		return v, true
	}
	r, ok = hex4(b)
	switch {
	case !ok:
		return 0, 0, false
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, 0, false
	case r >= 0xD800 && r <= 0xDBFF:
		lo, ok := hex4(b[6:])
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return 0, 0, false
		}
		return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12, true
	}
	return r, 6, true
}

func (d *decoder) string() (string, error) {
	b, err := d.str()
	return string(b), err
}

func (d *decoder) optString() (*string, error) {
	if null, err := d.null(); null || err != nil {
		return nil, err
	}
	s, err := d.string()
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (d *decoder) secret() (Secret, error) {
	b, err := d.str()
	return secretOf(b), err
}

func (d *decoder) optSecret() (*Secret, error) {
	if null, err := d.null(); null || err != nil {
		return nil, err
	}
	s, err := d.secret()
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (d *decoder) time() (time.Time, error) {
	if b, ok := d.next(); !ok || b != '"' {
		return time.Time{}, d.errorf("want a time string")
	}
	start := d.off + 1
	_, end, err := d.scanString(start)
	if err != nil {
		return time.Time{}, err
	}
	t, err := parseTime(d.data[start:end])
	if err != nil {
		return time.Time{}, d.errorf("%v", err)
	}
	d.off = end + 1
	return t, nil
}

func (d *decoder) optTime() (*time.Time, error) {
	if null, err := d.null(); null || err != nil {
		return nil, err
	}
	t, err := d.time()
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// top reads the outer object: a whole session or a tokens-only file,
// told apart by the first key.
func (d *decoder) top(s *AuthSession, now time.Time, userAgent string) error {
	sess := fields{names: []string{"tokens", "cookies", "turnkey_session", "user_info", "session_metadata"}}
	tok := fields{names: tokenFields}
	tokensOnly := false
	first := true
	err := d.object(len(sess.names)+maxUnknownMembers, func(key []byte) error {
		if first {
			first = false
			for _, n := range tokenFields {
				if string(key) == n {
					tokensOnly = true
				}
			}
		}
		if tokensOnly {
			if sess.index(key) >= 0 {
				return d.errorf("a session key in a tokens-only file (mixed shapes)")
			}
			return d.tokenField(&tok, key, &s.Tokens)
		}
		if tok.index(key) >= 0 {
			return d.errorf("a token key at the top of a session (mixed shapes)")
		}
		i, err := sess.mark(d, key, &s.extra)
		if i < 0 || err != nil {
			return err
		}
		d.push(sess.names[i])
		defer d.pop()
		switch i {
		case 0:
			return d.tokens(&s.Tokens)
		case 1:
			return d.cookies(&s.Cookies)
		case 2:
			if null, err := d.null(); null || err != nil {
				return err
			}
			s.TurnkeySession = &TurnkeySession{}
			return d.turnkey(s.TurnkeySession)
		case 3:
			if null, err := d.null(); null || err != nil {
				return err
			}
			s.UserInfo = &UserInfo{}
			return d.userInfo(s.UserInfo)
		default:
			return d.metadata(&s.Metadata)
		}
	})
	if err != nil {
		return err
	}
	if tokensOnly {
		if err := tok.require(d, 0, 1); err != nil {
			return err
		}
		s.Cookies = DefaultAuthCookies()
		s.Metadata = SessionMetadata{CreatedAt: now.UTC(), UserAgent: userAgent}
		return nil
	}
	return sess.require(d, 0, 1, 4)
}

var tokenFields = []string{"access_token", "refresh_token", "expires_at"}

func (d *decoder) tokens(t *AuthTokens) error {
	f := fields{names: tokenFields}
	if err := d.object(len(f.names)+maxUnknownMembers, func(key []byte) error { return d.tokenField(&f, key, t) }); err != nil {
		return err
	}
	return f.require(d, 0, 1)
}

func (d *decoder) tokenField(f *fields, key []byte, t *AuthTokens) (err error) {
	i, err := f.mark(d, key, &t.extra)
	if i < 0 || err != nil {
		return err
	}
	d.push(f.names[i])
	defer d.pop()
	switch i {
	case 0:
		t.AccessToken, err = d.secret()
	case 1:
		t.RefreshToken, err = d.secret()
	default:
		t.ExpiresAt, err = d.optTime()
	}
	return err
}

func (d *decoder) cookies(c *AuthCookies) error {
	f := fields{names: []string{"auth_access_token", "auth_refresh_token", "g_state", "additional_cookies"}}
	err := d.object(len(f.names)+maxUnknownMembers, func(key []byte) (err error) {
		i, err := f.mark(d, key, &c.extra)
		if i < 0 || err != nil {
			return err
		}
		d.push(f.names[i])
		defer d.pop()
		switch i {
		case 0:
			c.AuthAccessToken, err = d.optSecret()
		case 1:
			c.AuthRefreshToken, err = d.optSecret()
		case 2:
			c.GState, err = d.optString()
		default:
			c.Additional = map[string]Secret{}
			err = d.object(maxCookies, func(key []byte) error {
				name := string(key)
				if _, dup := c.Additional[name]; dup {
					return d.errorf("duplicate cookie name")
				}
				v, err := d.secret()
				if err != nil {
					return err
				}
				c.Additional[name] = v
				return nil
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	return f.require(d, 3)
}

func (d *decoder) turnkey(t *TurnkeySession) error {
	f := fields{names: []string{"organization_id", "user_id", "username", "client_secret", "api_keys", "created_at", "expires_at"}}
	err := d.object(len(f.names)+maxUnknownMembers, func(key []byte) (err error) {
		i, err := f.mark(d, key, &t.extra)
		if i < 0 || err != nil {
			return err
		}
		d.push(f.names[i])
		defer d.pop()
		switch i {
		case 0:
			t.OrganizationID, err = d.string()
		case 1:
			t.UserID, err = d.string()
		case 2:
			t.Username, err = d.string()
		case 3:
			t.ClientSecret, err = d.secret()
		case 4:
			t.APIKeys, err = d.apiKeys()
		case 5:
			t.CreatedAt, err = d.time()
		default:
			t.ExpiresAt, err = d.optTime()
		}
		return err
	})
	if err != nil {
		return err
	}
	return f.require(d, 0, 1, 2, 3, 4, 5)
}

func (d *decoder) apiKeys() ([]TurnkeyAPIKey, error) {
	if err := d.expect('['); err != nil {
		return nil, err
	}
	keys := []TurnkeyAPIKey{}
	if b, ok := d.next(); ok && b == ']' {
		d.off++
		return keys, nil
	}
	for {
		if len(keys) == maxAPIKeys {
			return nil, d.errorf("more than %d api keys", maxAPIKeys)
		}
		var k TurnkeyAPIKey
		if err := d.apiKey(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
		b, ok := d.next()
		if !ok {
			return nil, d.errorf("unexpected end of data in a list")
		}
		d.off++
		switch b {
		case ',':
		case ']':
			return keys, nil
		default:
			d.off--
			return nil, d.errorf("want ',' or ']'")
		}
	}
}

func (d *decoder) apiKey(k *TurnkeyAPIKey) error {
	f := fields{names: []string{"api_key_id", "api_key_name", "public_key", "key_type", "created_at", "expires_at"}}
	err := d.object(len(f.names)+maxUnknownMembers, func(key []byte) (err error) {
		i, err := f.mark(d, key, &k.extra)
		if i < 0 || err != nil {
			return err
		}
		d.push(f.names[i])
		defer d.pop()
		switch i {
		case 0:
			k.APIKeyID, err = d.string()
		case 1:
			k.APIKeyName, err = d.string()
		case 2:
			k.PublicKey, err = d.string()
		case 3:
			k.KeyType, err = d.string()
		case 4:
			k.CreatedAt, err = d.time()
		default:
			k.ExpiresAt, err = d.optTime()
		}
		return err
	})
	if err != nil {
		return err
	}
	return f.require(d, 0, 1, 2, 3, 4)
}

func (d *decoder) userInfo(u *UserInfo) error {
	f := fields{names: []string{"id", "email", "username"}}
	return d.object(len(f.names)+maxUnknownMembers, func(key []byte) (err error) {
		i, err := f.mark(d, key, &u.extra)
		if i < 0 || err != nil {
			return err
		}
		d.push(f.names[i])
		defer d.pop()
		switch i {
		case 0:
			u.ID, err = d.optString()
		case 1:
			u.Email, err = d.optString()
		default:
			u.Username, err = d.optString()
		}
		return err
	})
}

func (d *decoder) metadata(m *SessionMetadata) error {
	f := fields{names: []string{"created_at", "last_refreshed_at", "last_api_call_at", "current_api_server", "user_agent", "ip_address", "client_fingerprint"}}
	err := d.object(len(f.names)+maxUnknownMembers, func(key []byte) (err error) {
		i, err := f.mark(d, key, &m.extra)
		if i < 0 || err != nil {
			return err
		}
		d.push(f.names[i])
		defer d.pop()
		switch i {
		case 0:
			m.CreatedAt, err = d.time()
		case 1:
			m.LastRefreshedAt, err = d.optTime()
		case 2:
			m.LastAPICallAt, err = d.optTime()
		case 3:
			m.CurrentAPIServer, err = d.optString()
		case 4:
			m.UserAgent, err = d.string()
		case 5:
			m.IPAddress, err = d.optString()
		default:
			m.ClientFingerprint, err = d.optString()
		}
		return err
	})
	if err != nil {
		return err
	}
	return f.require(d, 0, 4)
}

var sprintf = fmt.Sprintf
