package session

// Members the decoder does not know.
//
// serde, which axiomtrade-rs uses, ignores unknown fields, so a newer
// release of that library may write a member this package does not know,
// and still read files that lack it. To round-trip such a file, the
// decoder keeps every unknown member of every object it reads (the
// session, tokens, cookies, the Turnkey session and its API keys, user
// info, metadata) and the encoder writes them back at the end of the same
// object, after the known fields, byte for byte as they were read (key
// and value, without the whitespace around them).
//
// They are hostile input like the rest: at most maxUnknownMembers per
// object, values nested at most maxUnknownDepth deep, with at most
// maxUnknownItems members or elements per nested object or array, every
// string checked as the known ones are (UTF-8, escapes, 64 KiB), and all
// of it inside the session's 1 MiB. A value may be a secret (a newer
// field might hold one), so members live in Secret buffers, are wiped
// with the session, and are written as "[REDACTED]" by MarshalJSON. An
// error never quotes their keys or values. Two unknown members with the
// same key (byte for byte as written) are refused, as serde refuses
// duplicate fields.

// members are the unknown members of one object, in input order.
type members struct {
	list []member
}

// member is one unknown member: raw holds `"key": value` as written, the
// first keyLen bytes being the quoted key.
type member struct {
	raw    Secret
	keyLen int
}

func (m *members) clone() *members {
	if m == nil {
		return nil
	}
	out := &members{list: make([]member, len(m.list))}
	for i, x := range m.list {
		out.list[i] = member{raw: x.raw.Clone(), keyLen: x.keyLen}
	}
	return out
}

func (m *members) destroy() {
	if m == nil {
		return
	}
	for i := range m.list {
		m.list[i].raw.Destroy()
	}
	m.list = nil
}

func (m *members) size() int {
	if m == nil {
		return 0
	}
	n := 0
	for _, x := range m.list {
		n += x.raw.Len() + 8
	}
	return n
}

// unknown reads the value of the member whose key the decoder just read
// (at d.keyStart:d.keyEnd) into *extra.
func (d *decoder) unknown(extra **members) error {
	if *extra == nil {
		*extra = &members{}
	}
	m := *extra
	if len(m.list) == maxUnknownMembers {
		return d.errorf("more than %d unknown members in one object", maxUnknownMembers)
	}
	key := d.data[d.keyStart:d.keyEnd]
	for _, x := range m.list {
		if x.keyLen == len(key) && string(x.raw.bytes()[:x.keyLen]) == string(key) {
			return d.errorf("duplicate unknown key")
		}
	}
	d.push("(unknown member)")
	defer d.pop()
	d.ws()
	start := d.off
	if err := d.skipValue(0); err != nil {
		return err
	}
	val := d.data[start:d.off]
	buf := make([]byte, 0, len(key)+2+len(val))
	buf = append(buf, key...)
	buf = append(buf, ": "...)
	buf = append(buf, val...)
	m.list = append(m.list, member{raw: secretOf(buf), keyLen: len(key)})
	return nil
}

// skipValue checks one JSON value of an unknown member and moves past it,
// copying nothing.
func (d *decoder) skipValue(depth int) error {
	if depth > maxUnknownDepth {
		return d.errorf("unknown member nested deeper than %d", maxUnknownDepth)
	}
	b, ok := d.next()
	if !ok {
		return d.errorf("unexpected end of data, want a value")
	}
	switch {
	case b == '"':
		return d.skipString()
	case b == '{':
		return d.skipList('{', '}', depth, true)
	case b == '[':
		return d.skipList('[', ']', depth, false)
	case b == 't':
		return d.literal("true")
	case b == 'f':
		return d.literal("false")
	case b == 'n':
		return d.literal("null")
	case b == '-' || b >= '0' && b <= '9':
		return d.number()
	}
	return d.errorf("want a JSON value")
}

func (d *decoder) skipString() error {
	_, end, err := d.scanString(d.off + 1)
	if err != nil {
		return err
	}
	d.off = end + 1
	return nil
}

// skipList moves past an object (keyed) or an array.
func (d *decoder) skipList(open, closer byte, depth int, keyed bool) error {
	d.off++ // open
	if b, ok := d.next(); ok && b == closer {
		d.off++
		return nil
	}
	for n := 0; ; n++ {
		if n == maxUnknownItems {
			return d.errorf("more than %d items in an unknown member's %c%c", maxUnknownItems, open, closer)
		}
		if keyed {
			if b, ok := d.next(); !ok || b != '"' {
				return d.errorf("want a string key")
			}
			if err := d.skipString(); err != nil {
				return err
			}
			if err := d.expect(':'); err != nil {
				return err
			}
		}
		if err := d.skipValue(depth + 1); err != nil {
			return err
		}
		b, ok := d.next()
		if !ok {
			return d.errorf("unexpected end of data in an unknown member")
		}
		d.off++
		switch b {
		case ',':
		case closer:
			return nil
		default:
			d.off--
			return d.errorf("want ',' or %q", closer)
		}
	}
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.off < len(lit) || string(d.data[d.off:d.off+len(lit)]) != lit {
		return d.errorf("invalid literal")
	}
	d.off += len(lit)
	return nil
}

// number moves past a JSON number (RFC 8259 grammar).
func (d *decoder) number() error {
	i := d.off
	data := d.data
	digits := func() int {
		n := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case digits() == 0:
		return d.errorf("invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if digits() == 0 {
			return d.errorf("invalid number")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return d.errorf("invalid number")
		}
	}
	d.off = i
	return nil
}

// extra writes the unknown members m at the end of the current object.
func (e *encoder) extra(m *members) {
	if m == nil {
		return
	}
	for _, x := range m.list {
		e.member()
		b := x.raw.bytes()
		if e.redact {
			e.rawBytes(b[:x.keyLen])
			e.raw(`: "` + redacted + `"`)
			continue
		}
		e.rawBytes(b)
	}
}

func (e *encoder) rawBytes(b []byte) {
	if e.measure {
		e.n += len(b)
		return
	}
	e.ensure(len(b))
	e.buf = append(e.buf, b...)
}
