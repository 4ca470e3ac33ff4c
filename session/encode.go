package session

import (
	"errors"
	"time"
	"unicode/utf8"
)

// The encoder writes a session exactly as serde_json::to_string_pretty
// writes the axiomtrade-rs structs: fields in declaration order, two-space
// indent, "key": value, null for absent options, {} and [] for empty
// collections, strings escaped as serde_json escapes them (only '"', '\\'
// and control characters), additional cookies sorted by name. A file that
// library wrote therefore round-trips byte for byte (up to its HashMap
// order).
//
// Secrets are written from their buffers into a buffer that the encoder
// owns; when it must grow, the old buffer is wiped first, so no partial
// plaintext is left behind for the garbage collector.

// MarshalPlaintext returns the session in the axiomtrade-rs JSON shape
// with every secret in clear. The caller owns the result and must wipe it
// (clear(b)) as soon as it is sealed or written out. An error matches
// ErrInvalidSession (a time outside years 0000-9999).
func (s *AuthSession) MarshalPlaintext() ([]byte, error) {
	e := encoder{}
	e.buf = make([]byte, 0, s.sizeHint())
	e.session(s)
	if e.err != nil {
		e.wipe()
		return nil, &DecodeError{Field: e.errField, Reason: e.err.Error()}
	}
	return e.buf, nil
}

// MarshalJSON writes the session in the axiomtrade-rs shape with every
// secret replaced by "[REDACTED]", for logs and debugging. It is not a way
// to store a session (UnmarshalJSON refuses the result): use
// MarshalPlaintext and a vault.
func (s *AuthSession) MarshalJSON() ([]byte, error) {
	e := encoder{redact: true}
	e.buf = make([]byte, 0, 2048)
	e.session(s)
	if e.err != nil {
		return nil, &DecodeError{Field: e.errField, Reason: e.err.Error()}
	}
	return e.buf, nil
}

// sizeHint estimates the encoded size so that the buffer rarely grows.
func (s *AuthSession) sizeHint() int {
	n := 2048 + len(s.Metadata.UserAgent)
	n += s.Tokens.AccessToken.Len() + s.Tokens.RefreshToken.Len()
	if c := s.Cookies.AuthAccessToken; c != nil {
		n += c.Len()
	}
	if c := s.Cookies.AuthRefreshToken; c != nil {
		n += c.Len()
	}
	for k, v := range s.Cookies.Additional {
		n += len(k) + v.Len() + 16
	}
	if t := s.TurnkeySession; t != nil {
		n += 256 + t.ClientSecret.Len() + 512*len(t.APIKeys)
	}
	return n + n/8
}

type encoder struct {
	buf      []byte
	depth    int
	has      [8]bool // has[d]: the object or array at depth d has a member
	err      error
	errField string
	field    string // the key being written, for errors
	redact   bool   // write "[REDACTED]" instead of secrets
}

var errNotUTF8 = errors.New("not valid UTF-8 (JSON strings cannot hold raw bytes)")

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err, e.errField = err, e.field
	}
}

// ensure makes room for n more bytes, wiping the buffer it leaves.
func (e *encoder) ensure(n int) {
	if len(e.buf)+n <= cap(e.buf) {
		return
	}
	nb := make([]byte, len(e.buf), 2*cap(e.buf)+n)
	copy(nb, e.buf)
	wipe(e.buf[:cap(e.buf)])
	e.buf = nb
}

func (e *encoder) wipe() {
	wipe(e.buf[:cap(e.buf)])
	e.buf = nil
}

func (e *encoder) raw(s string) {
	e.ensure(len(s))
	e.buf = append(e.buf, s...)
}

func (e *encoder) newlineIndent() {
	e.ensure(1 + 2*e.depth)
	e.buf = append(e.buf, '\n')
	for range e.depth {
		e.buf = append(e.buf, ' ', ' ')
	}
}

func (e *encoder) member() {
	if e.has[e.depth] {
		e.raw(",")
	}
	e.has[e.depth] = true
	e.newlineIndent()
}

func (e *encoder) beginObject() { e.raw("{"); e.depth++; e.has[e.depth] = false }
func (e *encoder) beginArray()  { e.raw("["); e.depth++; e.has[e.depth] = false }

func (e *encoder) end(closer string) {
	had := e.has[e.depth]
	e.depth--
	if had {
		e.newlineIndent()
	}
	e.raw(closer)
}

func (e *encoder) key(k string) {
	e.field = k
	e.member()
	e.str(k)
	e.raw(": ")
}

const hexDigits = "0123456789abcdef"

// strBytes writes b as a JSON string, escaping as serde_json does.
func (e *encoder) strBytes(b []byte) {
	if !utf8.Valid(b) {
		e.fail(errNotUTF8)
	}
	e.ensure(len(b) + 2)
	e.buf = append(e.buf, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			e.ensure(2)
			e.buf = append(e.buf, '\\', c)
		case c < 0x20:
			e.ensure(6)
			switch c {
			case '\b':
				e.buf = append(e.buf, '\\', 'b')
			case '\t':
				e.buf = append(e.buf, '\\', 't')
			case '\n':
				e.buf = append(e.buf, '\\', 'n')
			case '\f':
				e.buf = append(e.buf, '\\', 'f')
			case '\r':
				e.buf = append(e.buf, '\\', 'r')
			default:
				e.buf = append(e.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
		default:
			e.ensure(1)
			e.buf = append(e.buf, c)
		}
	}
	e.ensure(1)
	e.buf = append(e.buf, '"')
}

func (e *encoder) str(s string) {
	if !utf8.ValidString(s) {
		e.fail(errNotUTF8)
	}
	e.ensure(len(s) + 2)
	e.buf = append(e.buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 {
			// Rare: fall back to the byte path for the rest.
			e.buf = e.buf[:len(e.buf)-1-i]
			e.strBytes([]byte(s))
			return
		}
		e.ensure(1)
		e.buf = append(e.buf, c)
	}
	e.ensure(1)
	e.buf = append(e.buf, '"')
}

func (e *encoder) optStr(p *string) {
	if p == nil {
		e.raw("null")
		return
	}
	e.str(*p)
}

func (e *encoder) secret(s Secret) {
	if e.redact {
		e.raw(`"` + redacted + `"`)
		return
	}
	e.strBytes(s.bytes())
}

func (e *encoder) optSecret(s *Secret) {
	if s == nil {
		e.raw("null")
		return
	}
	e.secret(*s)
}

func (e *encoder) time(field string, t time.Time) {
	e.ensure(timeLen(t) + 2)
	e.buf = append(e.buf, '"')
	var err error
	e.buf, err = appendTime(e.buf, t)
	if err != nil {
		e.field = field
		e.fail(err)
	}
	e.buf = append(e.buf, '"')
}

func (e *encoder) optTime(field string, t *time.Time) {
	if t == nil {
		e.raw("null")
		return
	}
	e.time(field, *t)
}

func (e *encoder) session(s *AuthSession) {
	e.beginObject()
	e.key("tokens")
	e.tokens(&s.Tokens)
	e.key("cookies")
	e.cookies(&s.Cookies)
	e.key("turnkey_session")
	e.turnkey(s.TurnkeySession)
	e.key("user_info")
	e.userInfo(s.UserInfo)
	e.key("session_metadata")
	e.metadata(&s.Metadata)
	e.end("}")
}

func (e *encoder) tokens(t *AuthTokens) {
	e.beginObject()
	e.key("access_token")
	e.secret(t.AccessToken)
	e.key("refresh_token")
	e.secret(t.RefreshToken)
	e.key("expires_at")
	e.optTime("tokens.expires_at", t.ExpiresAt)
	e.end("}")
}

func (e *encoder) cookies(c *AuthCookies) {
	e.beginObject()
	e.key("auth_access_token")
	e.optSecret(c.AuthAccessToken)
	e.key("auth_refresh_token")
	e.optSecret(c.AuthRefreshToken)
	e.key("g_state")
	e.optStr(c.GState)
	e.key("additional_cookies")
	e.beginObject()
	for _, k := range sortedKeys(c.Additional) {
		e.key(k)
		e.secret(c.Additional[k])
	}
	e.end("}")
	e.end("}")
}

func (e *encoder) turnkey(t *TurnkeySession) {
	if t == nil {
		e.raw("null")
		return
	}
	e.beginObject()
	e.key("organization_id")
	e.str(t.OrganizationID)
	e.key("user_id")
	e.str(t.UserID)
	e.key("username")
	e.str(t.Username)
	e.key("client_secret")
	e.secret(t.ClientSecret)
	e.key("api_keys")
	e.beginArray()
	for i := range t.APIKeys {
		k := &t.APIKeys[i]
		e.member()
		e.beginObject()
		e.key("api_key_id")
		e.str(k.APIKeyID)
		e.key("api_key_name")
		e.str(k.APIKeyName)
		e.key("public_key")
		e.str(k.PublicKey)
		e.key("key_type")
		e.str(k.KeyType)
		e.key("created_at")
		e.time("turnkey_session.api_keys.created_at", k.CreatedAt)
		e.key("expires_at")
		e.optTime("turnkey_session.api_keys.expires_at", k.ExpiresAt)
		e.end("}")
	}
	e.end("]")
	e.key("created_at")
	e.time("turnkey_session.created_at", t.CreatedAt)
	e.key("expires_at")
	e.optTime("turnkey_session.expires_at", t.ExpiresAt)
	e.end("}")
}

func (e *encoder) userInfo(u *UserInfo) {
	if u == nil {
		e.raw("null")
		return
	}
	e.beginObject()
	e.key("id")
	e.optStr(u.ID)
	e.key("email")
	e.optStr(u.Email)
	e.key("username")
	e.optStr(u.Username)
	e.end("}")
}

func (e *encoder) metadata(m *SessionMetadata) {
	e.beginObject()
	e.key("created_at")
	e.time("session_metadata.created_at", m.CreatedAt)
	e.key("last_refreshed_at")
	e.optTime("session_metadata.last_refreshed_at", m.LastRefreshedAt)
	e.key("last_api_call_at")
	e.optTime("session_metadata.last_api_call_at", m.LastAPICallAt)
	e.key("current_api_server")
	e.optStr(m.CurrentAPIServer)
	e.key("user_agent")
	e.str(m.UserAgent)
	e.key("ip_address")
	e.optStr(m.IPAddress)
	e.key("client_fingerprint")
	e.optStr(m.ClientFingerprint)
	e.end("}")
}
