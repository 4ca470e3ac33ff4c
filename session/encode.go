package session

import (
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
// (clear(b)) as soon as it is sealed or written out.
//
// It refuses every session ParseSession would refuse, so that nothing is
// stored that cannot be loaded again: past a bound of limits.go (more
// cookies or API keys, a longer string, more bytes of JSON) the error is
// a *LimitError matching ErrTooLarge; a string that is not UTF-8 or a
// time outside years 0000-9999 is a *DecodeError matching
// ErrInvalidSession.
func (s *AuthSession) MarshalPlaintext() ([]byte, error) {
	return s.encodeInto(make([]byte, 0, s.sizeHint()))
}

// encodeInto writes what MarshalPlaintext returns into buf's capacity
// (buf must hold no secret past its length: it is overwritten, and
// wiped whole if it is outgrown or the session refused). The result
// shares buf's array while it fits, for a Manager that reuses one wiped
// buffer for all its writes; the caller wipes it.
func (s *AuthSession) encodeInto(buf []byte) ([]byte, error) {
	e := encoder{buf: buf[:0]}
	e.session(s)
	if err := e.finish(len(e.buf)); err != nil {
		e.wipe()
		return nil, err
	}
	return e.buf, nil
}

// measure returns the length MarshalPlaintext would write for s, or the
// error it would return, writing nothing: the check every update runs on
// the session it would make, before changing anything.
func (s *AuthSession) measure() (int, error) {
	e := encoder{measure: true}
	e.session(s)
	if err := e.finish(e.n); err != nil {
		return 0, err
	}
	return e.n, nil
}

// withTokens returns the length MarshalPlaintext would write for s with
// the tokens t and last_refreshed_at now, or the error it would return,
// given size, the length it writes for s itself: only the tokens object
// and the stamp are measured, so the rest of s must be unchanged since
// size was measured without error.
func (s *AuthSession) withTokens(size int, t *AuthTokens, now time.Time) (int, error) {
	was := encoder{measure: true, depth: 1}
	was.tokens(&s.Tokens)
	e := encoder{measure: true, depth: 1} // tokens sit at depth 1, as in session
	e.tokens(t)
	e.obj, e.name = "session_metadata", "last_refreshed_at"
	e.optTime(&now)
	n := size - was.n - optTimeLen(s.Metadata.LastRefreshedAt) + e.n
	if err := e.finish(n); err != nil {
		return 0, err
	}
	return n, nil
}

// MarshalJSON writes the session in the axiomtrade-rs shape with every
// secret replaced by "[REDACTED]", for logs and debugging. It is not a way
// to store a session (UnmarshalJSON refuses the result): use
// MarshalPlaintext and a vault. The bounds of the stored form do not apply.
func (s *AuthSession) MarshalJSON() ([]byte, error) {
	e := encoder{redact: true}
	e.buf = make([]byte, 0, 2048)
	e.session(s)
	if e.err != nil {
		return nil, e.err
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
	n += s.extra.size() + s.Tokens.extra.size() + s.Cookies.extra.size() + s.Metadata.extra.size()
	if t := s.TurnkeySession; t != nil {
		n += t.extra.size()
		for _, k := range t.APIKeys {
			n += k.extra.size()
		}
	}
	if s.UserInfo != nil {
		n += s.UserInfo.extra.size()
	}
	return n + n/8
}

// encoder writes a session into buf or, in measure mode, only counts the
// bytes it would write (n). Both modes run the same code, with the same
// checks, so that a measured session is exactly what would be written.
type encoder struct {
	buf     []byte
	n       int  // measure mode: bytes that would be written
	measure bool // count and check, write nothing
	redact  bool // write "[REDACTED]" instead of secrets; no bounds
	depth   int
	has     [8]bool // has[d]: the object or array at depth d has a member
	err     error   // the first failure
	obj     string  // JSON path of the object being written, for errors
	name    string  // the key being written in it, for errors
}

// field is the JSON path being written, for errors. It is made of field
// names of the format only: inside additional_cookies it stops at the
// map, so that no cookie name reaches an error.
func (e *encoder) field() string {
	switch {
	case e.obj == "":
		return e.name
	case e.name == "":
		return e.obj
	}
	return e.obj + "." + e.name
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) failValue(reason string) {
	e.fail(&DecodeError{Offset: -1, Field: e.field(), Reason: reason})
}

// failLimit records a bound of limits.go that the session passes. The
// redacted form, which is never read back, has no bounds.
func (e *encoder) failLimit(unit string, size, limit int) {
	if !e.redact {
		e.fail(&LimitError{Field: e.field(), Unit: unit, Size: size, Limit: limit})
	}
}

// finish checks the whole length n and returns the first failure.
func (e *encoder) finish(n int) error {
	if e.err == nil && n > maxSessionJSON {
		e.err = &LimitError{Unit: "bytes of JSON", Size: n, Limit: maxSessionJSON}
	}
	return e.err
}

const errNotUTF8 = "not valid UTF-8 (JSON strings cannot hold raw bytes)"

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
	if e.measure {
		e.n += len(s)
		return
	}
	e.ensure(len(s))
	e.buf = append(e.buf, s...)
}

func (e *encoder) newlineIndent() {
	if e.measure {
		e.n += 1 + 2*e.depth
		return
	}
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

// key writes a field name of the format: a constant of this file, plain
// ASCII that needs no escape and no check.
func (e *encoder) key(k string) {
	e.name = k
	e.member()
	e.quotedPlain(k, ": ")
}

// quotedPlain writes s in quotes, then tail: s needs no escape and has
// been checked (or is a constant of this file).
func (e *encoder) quotedPlain(s, tail string) {
	n := len(s) + 2 + len(tail)
	if e.measure {
		e.n += n
		return
	}
	e.ensure(n)
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, tail...)
}

// mapKey writes a key of additional_cookies: a name from outside, which
// errors do not name (e.field stays the map's path).
func (e *encoder) mapKey(k string) {
	e.name = ""
	e.member()
	e.str(k)
	e.raw(": ")
}

// checkString applies the reader's rules for a string of n bytes (after
// unescaping) to a string about to be written.
func (e *encoder) checkString(n int, valid bool) {
	if !valid {
		e.failValue(errNotUTF8)
	}
	if n > maxStringLen {
		e.failLimit("bytes", n, maxStringLen)
	}
}

const hexDigits = "0123456789abcdef"

// needsEscape reports whether c is written escaped in a JSON string.
func needsEscape(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }

// Bit masks for escapeAt: one bit (or one value) per byte of a word.
const (
	eachByte = 0x0101010101010101
	highBits = 0x8080808080808080
)

// escapeAt returns the index of the first byte of b at or after i that
// needsEscape, or len(b). It checks eight bytes per step (a word has a
// byte below 0x20 iff (x - 0x20 each) &^ x has a high bit set, and a
// byte equal to q iff x^(q each) has a zero byte), then finds the byte
// one at a time.
func escapeAt[T string | []byte](b T, i int) int {
	for ; i+8 <= len(b); i += 8 {
		w := b[i : i+8] // of known length: one load, no bounds checks
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		ctl := (x - 0x20*eachByte) &^ x
		q := x ^ ('"' * eachByte)
		q = (q - eachByte) &^ q
		bs := x ^ ('\\' * eachByte)
		bs = (bs - eachByte) &^ bs
		if (ctl|q|bs)&highBits != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if needsEscape(b[i]) {
			return i
		}
	}
	return len(b)
}

// quotedLen is the length of b written as a JSON string, quotes included,
// escaped as strBytes escapes it.
func quotedLen[T string | []byte](b T) int {
	n := 2 + len(b)
	for i := escapeAt(b, 0); i < len(b); i = escapeAt(b, i+1) {
		switch b[i] {
		case '"', '\\', '\b', '\t', '\n', '\f', '\r':
			n++
		default:
			n += 5
		}
	}
	return n
}

// strBytes writes b as a JSON string, escaping as serde_json does. The
// runs between escapes are copied in one go.
func (e *encoder) strBytes(b []byte) {
	e.checkString(len(b), utf8.Valid(b))
	if e.measure {
		e.n += quotedLen(b)
		return
	}
	e.ensure(len(b) + 2)
	e.buf = append(e.buf, '"')
	start := 0
	for i := escapeAt(b, 0); i < len(b); i = escapeAt(b, i+1) {
		c := b[i]
		e.ensure(i - start + 6)
		e.buf = append(e.buf, b[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			e.buf = append(e.buf, '\\', c)
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
	}
	e.ensure(len(b) - start + 1)
	e.buf = append(e.buf, b[start:]...)
	e.buf = append(e.buf, '"')
}

// str writes s as strBytes does; strings need no escaping in the common
// case, which it copies in one go.
func (e *encoder) str(s string) {
	if escapeAt(s, 0) < len(s) {
		e.strBytes([]byte(s)) // rare, and s is no secret
		return
	}
	e.checkString(len(s), utf8.ValidString(s))
	e.quotedPlain(s, "")
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

func (e *encoder) time(t time.Time) {
	if e.measure {
		if !timeInRange(t) {
			e.failValue(errTimeRange.Error())
		}
		e.n += timeLen(t) + 2
		return
	}
	e.ensure(timeLen(t) + 2)
	e.buf = append(e.buf, '"')
	var err error
	if e.buf, err = appendTime(e.buf, t); err != nil { // its only error
		e.failValue(errTimeRange.Error())
	}
	e.buf = append(e.buf, '"')
}

func (e *encoder) optTime(t *time.Time) {
	if t == nil {
		e.raw("null")
		return
	}
	e.time(*t)
}

// optTimeLen and optStrLen are the lengths optTime and optStr write, for
// MarkAPICall, which updates a measured size without measuring again.
func optTimeLen(t *time.Time) int {
	if t == nil {
		return len("null")
	}
	return timeLen(*t) + 2
}

func optStrLen(s *string) int {
	if s == nil {
		return len("null")
	}
	return quotedLen(*s)
}

func (e *encoder) session(s *AuthSession) {
	e.obj = ""
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
	e.extra(s.extra)
	e.end("}")
}

// Each struct writer sets e.obj to its path and restores the top level's
// (its own parent is always the top level, or the list in turnkey).

func (e *encoder) tokens(t *AuthTokens) {
	e.obj = "tokens"
	e.beginObject()
	e.key("access_token")
	e.secret(t.AccessToken)
	e.key("refresh_token")
	e.secret(t.RefreshToken)
	e.key("expires_at")
	e.optTime(t.ExpiresAt)
	e.extra(t.extra)
	e.end("}")
	e.obj = ""
}

func (e *encoder) cookies(c *AuthCookies) {
	e.obj = "cookies"
	e.beginObject()
	e.key("auth_access_token")
	e.optSecret(c.AuthAccessToken)
	e.key("auth_refresh_token")
	e.optSecret(c.AuthRefreshToken)
	e.key("g_state")
	e.optStr(c.GState)
	e.key("additional_cookies")
	e.obj, e.name = "cookies.additional_cookies", ""
	if n := len(c.Additional); n > maxCookies {
		e.failLimit("cookies", n, maxCookies)
	}
	e.beginObject()
	if e.measure {
		for k, v := range c.Additional { // order does not change the length
			e.mapKey(k)
			e.secret(v)
		}
	} else {
		var small [16]string // sorted on the stack for a usual jar
		for _, k := range appendSortedKeys(small[:0], c.Additional) {
			e.mapKey(k)
			e.secret(c.Additional[k])
		}
	}
	e.end("}")
	e.obj = "cookies"
	e.extra(c.extra)
	e.end("}")
	e.obj = ""
}

func (e *encoder) turnkey(t *TurnkeySession) {
	if t == nil {
		e.raw("null")
		return
	}
	e.obj = "turnkey_session"
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
	if n := len(t.APIKeys); n > maxAPIKeys {
		e.failLimit("api keys", n, maxAPIKeys)
	}
	e.beginArray()
	for i := range t.APIKeys {
		k := &t.APIKeys[i]
		e.member()
		e.obj = "turnkey_session.api_keys"
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
		e.time(k.CreatedAt)
		e.key("expires_at")
		e.optTime(k.ExpiresAt)
		e.extra(k.extra)
		e.end("}")
		e.obj = "turnkey_session"
	}
	e.end("]")
	e.key("created_at")
	e.time(t.CreatedAt)
	e.key("expires_at")
	e.optTime(t.ExpiresAt)
	e.extra(t.extra)
	e.end("}")
	e.obj = ""
}

func (e *encoder) userInfo(u *UserInfo) {
	if u == nil {
		e.raw("null")
		return
	}
	e.obj = "user_info"
	e.beginObject()
	e.key("id")
	e.optStr(u.ID)
	e.key("email")
	e.optStr(u.Email)
	e.key("username")
	e.optStr(u.Username)
	e.extra(u.extra)
	e.end("}")
	e.obj = ""
}

func (e *encoder) metadata(m *SessionMetadata) {
	e.obj = "session_metadata"
	e.beginObject()
	e.key("created_at")
	e.time(m.CreatedAt)
	e.key("last_refreshed_at")
	e.optTime(m.LastRefreshedAt)
	e.key("last_api_call_at")
	e.optTime(m.LastAPICallAt)
	e.key("current_api_server")
	e.optStr(m.CurrentAPIServer)
	e.key("user_agent")
	e.str(m.UserAgent)
	e.key("ip_address")
	e.optStr(m.IPAddress)
	e.key("client_fingerprint")
	e.optStr(m.ClientFingerprint)
	e.extra(m.extra)
	e.end("}")
	e.obj = ""
}
