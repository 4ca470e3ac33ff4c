package session

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseSetCookies reads the Set-Cookie headers of a response into
// AuthCookies (the seed's AuthCookies::parse_from_headers), with net/http's
// cookie parser, so values containing '=' (base64 padding) are kept whole;
// the seed dropped them. Unlike the seed it sets g_state only when a
// g_state cookie is present, so merging the result no longer resets the
// session's g_state. A cookie the server expires (Max-Age <= 0, or an
// Expires in the past) is listed in Deleted. Lines net/http refuses only
// because the value holds a '"' or '\' (Google's g_state is JSON) are
// read as name=value; other malformed lines are skipped, and so are
// cookies a session cannot store (a name or value that is not UTF-8 or is
// longer than 64 KiB, which no browser sends either).
func ParseSetCookies(h http.Header) AuthCookies {
	c := AuthCookies{Additional: map[string]Secret{}}
	now := time.Now()
	for _, line := range h.Values("Set-Cookie") {
		name, value, quoted, deleted, ok := parseSetCookie(line, now)
		if !ok || !storable(name, value, quoted) {
			continue
		}
		c.forget(name)
		if deleted {
			c.Deleted = append(c.Deleted, name)
			continue
		}
		switch name {
		case CookieAuthAccessToken:
			c.AuthAccessToken = secretFromString(value, quoted)
		case CookieAuthRefreshToken:
			c.AuthRefreshToken = secretFromString(value, quoted)
		case CookieGState:
			if quoted {
				value = `"` + value + `"`
			}
			c.GState = &value
		default:
			c.Additional[name] = *secretFromString(value, quoted)
		}
	}
	return c
}

// storable reports whether a cookie fits a stored session: its name and
// value (with the quotes the value is stored with) within maxStringLen
// and valid UTF-8, as ParseSession reads them.
func storable(name, value string, quoted bool) bool {
	n := len(value)
	if quoted {
		n += 2
	}
	return len(name) <= maxStringLen && n <= maxStringLen && utf8.ValidString(name) && utf8.ValidString(value)
}

// forget drops an earlier entry for name (a later line wins).
func (c *AuthCookies) forget(name string) {
	for i, d := range c.Deleted {
		if d == name {
			c.Deleted = append(c.Deleted[:i], c.Deleted[i+1:]...)
			break
		}
	}
	switch name {
	case CookieAuthAccessToken:
		c.AuthAccessToken.Destroy()
		c.AuthAccessToken = nil
	case CookieAuthRefreshToken:
		c.AuthRefreshToken.Destroy()
		c.AuthRefreshToken = nil
	case CookieGState:
		c.GState = nil
	default:
		if v, ok := c.Additional[name]; ok {
			v.Destroy()
			delete(c.Additional, name)
		}
	}
}

// mergeDelta adds the changes o describes to the delta c, keeping both the
// values o sets and the names it deletes, so that replaying c on another
// copy of the session (after a write conflict) deletes them there too.
func (c *AuthCookies) mergeDelta(o AuthCookies) {
	if c.Additional == nil {
		c.Additional = map[string]Secret{}
	}
	for _, name := range o.Deleted {
		c.forget(name)
		c.Deleted = append(c.Deleted, name)
	}
	sets := o
	sets.Deleted = nil
	undelete := func(name string) {
		for i, d := range c.Deleted {
			if d == name {
				c.Deleted = append(c.Deleted[:i], c.Deleted[i+1:]...)
				return
			}
		}
	}
	if o.AuthAccessToken != nil {
		undelete(CookieAuthAccessToken)
	}
	if o.AuthRefreshToken != nil {
		undelete(CookieAuthRefreshToken)
	}
	if o.GState != nil {
		undelete(CookieGState)
	}
	for name := range o.Additional {
		undelete(name)
	}
	c.Merge(sets)
}

// secretFromString copies a header substring straight into a new Secret
// buffer (a []byte(s) conversion would leave one more copy), restoring the
// double quotes of a quoted value as the server sent them.
func secretFromString(s string, quoted bool) *Secret {
	if !quoted {
		b := make([]byte, len(s))
		copy(b, s)
		return ptr(secretOf(b))
	}
	b := make([]byte, len(s)+2)
	b[0], b[len(b)-1] = '"', '"'
	copy(b[1:], s)
	return ptr(secretOf(b))
}

func parseSetCookie(line string, now time.Time) (name, value string, quoted, deleted, ok bool) {
	ck, err := http.ParseSetCookie(line)
	if err == nil {
		deleted = ck.MaxAge < 0 || (ck.RawExpires != "" && !ck.Expires.IsZero() && ck.Expires.Before(now))
		return ck.Name, ck.Value, ck.Quoted, deleted, true
	}
	// net/http refuses '"' and '\' inside a value. Read the name=value
	// pair of such a line by hand; the attributes are ignored.
	pair, _, _ := strings.Cut(line, ";")
	name, value, found := strings.Cut(pair, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !found || !validCookieName(name) || !validCookieValue(value) {
		return "", "", false, false, false
	}
	return name, value, false, false, true
}

// validCookieName reports whether s is an RFC 7230 token.
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validCookieValue reports whether b can sit in a Cookie header: no ';'
// (it would start another cookie), no control characters, no spaces at
// either end.
func validCookieValue[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == 0x7f || c == ';' {
			return false
		}
	}
	return len(b) == 0 || (b[0] != ' ' && b[len(b)-1] != ' ')
}

// cookieHeader builds the Cookie header value in a buffer it wipes, so
// that the only copy left is the string net/http needs.
func cookieHeader(c *AuthCookies) (string, bool) {
	type kv struct {
		name  string
		value []byte
	}
	var pairs []kv
	add := func(name string, value []byte) {
		if validCookieName(name) && validCookieValue(value) {
			pairs = append(pairs, kv{name, value})
		}
	}
	if c.GState != nil {
		add(CookieGState, []byte(*c.GState))
	}
	if c.AuthRefreshToken != nil {
		add(CookieAuthRefreshToken, c.AuthRefreshToken.bytes())
	}
	if c.AuthAccessToken != nil {
		add(CookieAuthAccessToken, c.AuthAccessToken.bytes())
	}
	for _, k := range sortedKeys(c.Additional) {
		add(k, c.Additional[k].bytes())
	}
	if len(pairs) == 0 {
		return "", false
	}
	n := 2 * (len(pairs) - 1)
	for _, p := range pairs {
		n += len(p.name) + 1 + len(p.value)
	}
	buf := make([]byte, 0, n)
	for i, p := range pairs {
		if i > 0 {
			buf = append(buf, ';', ' ')
		}
		buf = append(buf, p.name...)
		buf = append(buf, '=')
		buf = append(buf, p.value...)
	}
	s := string(buf)
	wipe(buf)
	return s, true
}
