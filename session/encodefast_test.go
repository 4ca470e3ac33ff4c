package session

import (
	"bytes"
	"context"
	"errors"
	"github.com/sessionvault/sessionvault/backends"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The encoder's fast paths (escapeAt's eight bytes at a time, strBytes'
// runs, a Manager's size kept across token updates, its reused plaintext
// buffer) against the plain ways they replace.

// escapeAtByByte is escapeAt one byte at a time.
func escapeAtByByte(b []byte, i int) int {
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(b)
}

// strBytesByByte is the JSON string strBytes writes, one byte at a time.
func strBytesByByte(b []byte) []byte {
	out := []byte{'"'}
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// TestEscapeAtMatchesByteScan puts every byte value at every position of
// buffers of 0 to 24 bytes, on a plain ASCII and on a UTF-8 (high byte)
// background, so that each lane of the eight-byte step and the tail see
// every value; escapeAt, quotedLen and strBytes must agree with the byte
// at a time forms.
func TestEscapeAtMatchesByteScan(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		for from := 0; from <= len(b); from++ {
			if got, want := escapeAt(b, from), escapeAtByByte(b, from); got != want {
				t.Fatalf("escapeAt(%q, %d) = %d, want %d", b, from, got, want)
			}
			if got, want := escapeAt(string(b), from), escapeAtByByte(b, from); got != want {
				t.Fatalf("escapeAt(string %q, %d) = %d, want %d", b, from, got, want)
			}
		}
		want := strBytesByByte(b)
		if n := quotedLen(b); n != len(want) {
			t.Fatalf("quotedLen(%q) = %d, want %d", b, n, len(want))
		}
		e := encoder{buf: make([]byte, 0, 1)} // grows on every write
		e.strBytes(b)
		if !bytes.Equal(e.buf, want) {
			t.Fatalf("strBytes(%q) = %q, want %q", b, e.buf, want)
		}
	}
	for _, bg := range []byte{'a', 0xe9, 0x7f, 0x21, 0x5d} {
		for n := 0; n <= 24; n++ {
			for p := 0; p < n; p++ {
				for c := range 256 {
					b := bytes.Repeat([]byte{bg}, n)
					b[p] = byte(c)
					check(b)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(80))
		for i := range b {
			switch r.IntN(4) {
			case 0:
				b[i] = byte(r.IntN(256))
			case 1:
				b[i] = `"\`[r.IntN(2)]
			default:
				b[i] = byte('a' + r.IntN(26))
			}
		}
		check(b)
	}
}

// withTokensCase is a session and the tokens an update brings to it.
type withTokensCase struct {
	name string
	s    func() *AuthSession
	tok  func() AuthTokens
	now  time.Time
	want error // nil: the update fits
}

// tokenExtra is an unknown member of the tokens object.
func tokenExtra(raw string) *members {
	return &members{list: []member{{raw: secretOf([]byte(raw)), keyLen: strings.Index(raw, ":")}}}
}

// TestWithTokensIsMeasure: the length (or the error) a token update
// measures from the session's known length is the one measuring the
// whole session it makes returns, for tokens with and without unknown
// members of their own, over sessions whose tokens have some, for tokens
// no stored form can hold, for a clock outside the years the form holds,
// and at the 1 MiB bound.
func TestWithTokensIsMeasure(t *testing.T) {
	exp := t0.Add(time.Hour)
	plain := func() *AuthSession { return limitSession() }
	withExtra := func() *AuthSession {
		s := limitSession()
		s.Tokens.extra = tokenExtra(`"scope": ["read", "trade"]`)
		s.Metadata.LastRefreshedAt = ptr(t0.Add(time.Minute))
		return s
	}
	// atBound is limitSession padded with one cookie to exactly
	// maxSessionJSON bytes.
	atBound := func() *AuthSession {
		s := limitSession()
		s.Metadata.LastRefreshedAt = ptr(t0)
		s.Cookies.Additional = manyCookies("big", 16, strings.Repeat("x", 60<<10)).Additional
		n, _ := s.measure()
		s.Cookies.Additional["pad"] = NewSecret([]byte(strings.Repeat("x", maxSessionJSON-n-len(`,
      "pad": ""`))))
		return s
	}
	cases := []withTokensCase{
		{"same lengths", plain, func() AuthTokens { return tokens("b", "s", nil) }, t0, nil},
		{"longer, expiring", plain, func() AuthTokens { return tokens("a longer access token", "refresh", &exp) }, t0.Add(123456789), nil},
		{"escapes", plain, func() AuthTokens { return tokens("a\"b\\c\nd\x01", "é\t", nil) }, t0, nil},
		{"kept unknown members", withExtra, func() AuthTokens { return tokens("b", "s", &exp) }, t0, nil},
		{"own unknown members", withExtra, func() AuthTokens {
			tk := tokens("b", "s", nil)
			tk.extra = tokenExtra(`"id_token": "x"`)
			return tk
		}, t0, nil},
		{"not UTF-8", plain, func() AuthTokens { return tokens("a\xff", "r", nil) }, t0, ErrInvalidSession},
		{"refresh token too long", plain, func() AuthTokens { return tokens("a", strings.Repeat("r", maxStringLen+1), nil) }, t0, ErrTooLarge},
		{"expiry out of range", plain, func() AuthTokens { return tokens("a", "r", ptr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))) }, t0, ErrInvalidSession},
		{"clock out of range", plain, func() AuthTokens { return tokens("a", "r", nil) }, time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), ErrInvalidSession},
		{"at the bound, same length", atBound, func() AuthTokens { return tokens("b", "s", nil) }, t0.Add(time.Hour), nil},
		{"one byte past the bound", atBound, func() AuthTokens { return tokens("ab", "r", nil) }, t0, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.s()
			defer s.Destroy()
			tok := c.tok()
			defer tok.Destroy()
			size, err := s.measure()
			if err != nil {
				t.Fatal(err)
			}
			st := storedTokens(s, tok)
			got, gerr := s.withTokens(size, &st, c.now)
			view := *s
			view.Tokens = st
			view.Metadata.LastRefreshedAt = &c.now
			want, werr := view.measure()
			if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
				t.Fatalf("error %v, want %v", gerr, werr)
			}
			if got != want {
				t.Fatalf("length %d, want %d", got, want)
			}
			if c.want == nil && gerr != nil || c.want != nil && !errors.Is(gerr, c.want) {
				t.Fatalf("error %v, want one matching %v", gerr, c.want)
			}
			if werr == nil {
				out, err := view.MarshalPlaintext()
				if err != nil {
					t.Fatal(err)
				}
				defer wipe(out)
				if len(out) != got {
					t.Fatalf("measured %d, writes %d", got, len(out))
				}
			}
			t.Logf("length %d, error %v", got, gerr)
		})
	}
}

// TestManagerSizeIsWritten: after token updates (with and without
// unknown members of the tokens object, which UpdateTokens keeps) and a
// refresh, the length the Manager keeps for its session is the length it
// writes and the store holds.
func TestManagerSizeIsWritten(t *testing.T) {
	ctx := ctxT(t)
	st := newTestStore(t)
	clk := newClock(t0)
	m := newTestManager(t, st, WithClock(clk.now), WithRefresher(func(context.Context, Secret) (AuthTokens, *AuthCookies, error) {
		return tokens("refreshed access token", "refreshed refresh token", nil), authCookies("c1", "c2"), nil
	}))
	tok := tokens("a", "r", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, authCookies("ca", "cr")); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		m.mu.Lock()
		size, ok := m.size, m.sizeOK
		out, err := m.sess.MarshalPlaintext()
		m.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		defer wipe(out)
		if !ok || size != len(out) {
			t.Fatalf("%s: kept length %d (known %v), writes %d", what, size, ok, len(out))
		}
		pt, _, err := st.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer wipe(pt)
		if !bytes.Equal(pt, out) {
			t.Fatalf("%s: the store holds %d bytes, not the session's %d", what, len(pt), len(out))
		}
	}
	m.mu.Lock()
	m.sess.Tokens.extra = tokenExtra(`"scope": "trade"`)
	m.sizeOK = false
	m.mu.Unlock()
	clk.advance(time.Second + 1234)
	long := tokens(strings.Repeat("t", 3000), "r2", ptr(t0.Add(time.Hour)))
	defer long.Destroy()
	if err := m.UpdateTokens(ctx, long); err != nil { // measured whole: the length was dropped
		t.Fatal(err)
	}
	check("first update")
	for i := range 3 {
		clk.advance(time.Duration(i+1) * 1001 * time.Microsecond)
		tk := tokens(strings.Repeat("u", 10*i), "r", nil)
		err := m.UpdateTokens(ctx, tk)
		tk.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		check("update")
	}
	own := tokens("a", "r", nil)
	own.extra = tokenExtra(`"id_token": "x"`)
	defer own.Destroy()
	if err := m.UpdateTokens(ctx, own); err != nil {
		t.Fatal(err)
	}
	check("tokens with their own unknown members")
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("refresh")
}

// TestScratchIsWiped: the buffer a Manager reuses for its plaintext holds
// only zeros between writes, is reused by the next write of a session of
// about the same size, is not kept for a session over maxKeptScratch, and
// is dropped by Close.
func TestScratchIsWiped(t *testing.T) {
	ctx := ctxT(t)
	m := newTestManager(t, newTestStore(t))
	tok := tokens("access token", "refresh token", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	zeros := func(what string) []byte {
		t.Helper()
		m.ioMu.Lock()
		defer m.ioMu.Unlock()
		b := m.scratch[:cap(m.scratch)]
		for i, c := range b {
			if c != 0 {
				t.Fatalf("%s: byte %d of the kept buffer is not zero", what, i)
			}
		}
		return b
	}
	first := zeros("after create")
	if len(first) == 0 {
		t.Fatal("no buffer kept after a write")
	}
	for i := range 3 {
		tk := tokens("access token "+strings.Repeat("x", i), "refresh token", nil)
		err := m.UpdateTokens(ctx, tk)
		tk.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		if b := zeros("after an update"); &b[0] != &first[0] {
			t.Error("a write of about the same size made a new buffer")
		}
	}
	big := manyCookies("c", 40, strings.Repeat("v", 4000))
	defer big.Destroy()
	if err := m.UpdateCookies(ctx, big); err != nil {
		t.Fatal(err)
	}
	if b := zeros("after a large write"); len(b) != 0 {
		t.Errorf("kept a %d-byte buffer, over maxKeptScratch (%d)", len(b), maxKeptScratch)
	}
	// A refused write leaves a wiped buffer too.
	m.mu.Lock()
	m.sess.Metadata.UserAgent = "\xff" // a session that cannot be stored
	m.pend.api = true
	m.mu.Unlock()
	if err := m.Save(ctx); !errors.Is(err, ErrInvalidSession) {
		t.Fatalf("save of an unstorable session: %v", err)
	}
	zeros("after a refused write")
	m.mu.Lock()
	m.sess.Metadata.UserAgent = "ua"
	m.mu.Unlock()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if m.scratch != nil {
		t.Error("Close kept the buffer")
	}
}

// TestUnlockContext: the unlock's context behaves as
// context.WithTimeout(context.WithoutCancel(parent), d): the parent's
// values, not its cancellation, Done closed at the deadline with
// DeadlineExceeded or by stop with Canceled, whether Done was asked for
// before stop or not.
func TestUnlockContext(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancel()
	closed := func(c *unlockContext) bool {
		select {
		case <-c.Done():
			return true
		default:
			return false
		}
	}

	before := time.Now()
	c := newUnlockContext(parent, 50*time.Millisecond)
	if v := c.Value(key{}); v != "v" {
		t.Errorf("Value = %v, want the parent's", v)
	}
	if dl, ok := c.Deadline(); !ok || dl.Before(before.Add(50*time.Millisecond)) || dl.After(time.Now().Add(50*time.Millisecond)) {
		t.Errorf("Deadline = %v, %v, want 50ms from now", dl, ok)
	}
	if err := c.Err(); err != nil || closed(c) {
		t.Fatalf("ended with its canceled parent: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed at the deadline")
	}
	if time.Now().Before(c.deadline) {
		t.Error("Done closed before the deadline")
	}
	// As for context.WithTimeout(context.WithoutCancel(parent)): the
	// cause is its own deadline, not the canceled parent's cause.
	if cause := context.Cause(c); cause != context.DeadlineExceeded {
		t.Errorf("Cause = %v, want DeadlineExceeded", cause)
	}
	c.stop()
	if err := c.Err(); err != context.DeadlineExceeded {
		t.Errorf("Err after the deadline = %v", err)
	}

	c = newUnlockContext(parent, time.Hour) // stopped without Done asked for
	c.stop()
	if !closed(c) || c.Err() != context.Canceled || c.timer != nil {
		t.Errorf("stopped before Done: closed %v, Err %v, timer %v", closed(c), c.Err(), c.timer != nil)
	}

	c = newUnlockContext(parent, time.Hour) // Done asked for, then stopped
	ch := c.Done()
	c.stop()
	select {
	case <-ch:
	default:
		t.Fatal("stop did not close Done")
	}
	if c.Err() != context.Canceled || c.timer.Stop() {
		t.Errorf("stopped after Done: Err %v, timer still running", c.Err())
	}
	c.stop() // a second stop is a no-op

	c = newUnlockContext(parent, 0) // already past
	if !closed(c) || c.Err() != context.DeadlineExceeded {
		t.Errorf("past deadline: closed %v, Err %v", closed(c), c.Err())
	}
}

// TestSecretPairIsTwoSecrets: the two Secrets of newSecretPair (how
// tokens are copied) are what two NewSecret calls make: equal bytes,
// the zero Secret for nil, an empty one for empty; each capped at its
// own length, and each wiped alone by its Destroy.
func TestSecretPairIsTwoSecrets(t *testing.T) {
	for _, c := range [][2][]byte{
		{[]byte("access"), []byte("refresh")},
		{[]byte{}, []byte("r")},
		{[]byte("a"), []byte{}},
		{nil, []byte("r")},
		{[]byte("a"), nil},
		{nil, nil},
	} {
		a, b := newSecretPair(c[0], c[1])
		for i, s := range []Secret{a, b} {
			want := NewSecret(c[i])
			if !bytes.Equal(s.Bytes(), want.Bytes()) || (s.p == nil) != (want.p == nil) {
				t.Fatalf("%q: secret %d is %q (zero %v), want %q (zero %v)", c, i, s.Bytes(), s.p == nil, want.Bytes(), want.p == nil)
			}
			if cap(s.Bytes()) != len(s.Bytes()) {
				t.Fatalf("%q: secret %d has room past its bytes", c, i)
			}
		}
		wa, wb := a.Bytes(), b.Bytes() // the buffers, as a caller may hold them
		a.Destroy()
		if !bytes.Equal(wb, c[1]) || !bytes.Equal(b.Bytes(), c[1]) {
			t.Fatalf("%q: destroying the first changed the second to %q", c, wb)
		}
		if bytes.ContainsFunc(wa, func(r rune) bool { return r != 0 }) || !a.IsEmpty() {
			t.Fatalf("%q: the first not wiped: %q", c, wa)
		}
		b.Destroy()
		if bytes.ContainsFunc(wb, func(r rune) bool { return r != 0 }) || !b.IsEmpty() {
			t.Fatalf("%q: the second not wiped: %q", c, wb)
		}
	}
}

// panicStore is a Store whose Seal panics once armed.
type panicStore struct {
	*testStore
	armed bool
}

func (p *panicStore) Seal(ctx context.Context, pt []byte, v backends.Version) (backends.Version, error) {
	if p.armed {
		panic("seal failed")
	}
	return p.testStore.Seal(ctx, pt, v)
}

// A Store whose Seal panics, under a caller that recovers, leaves no
// plaintext in the Manager's kept buffer.
func TestScratchWipedWhenSealPanics(t *testing.T) {
	ctx := ctxT(t)
	st := &panicStore{testStore: newTestStore(t)}
	m := newTestManager(t, st)
	tok := tokens("access token", "refresh token", nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	st.armed = true
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Seal did not panic")
			}
		}()
		tk := tokens("new access token", "new refresh token", nil)
		defer tk.Destroy()
		_ = m.UpdateTokens(ctx, tk)
	}()
	m.ioMu.Lock()
	defer m.ioMu.Unlock()
	for i, c := range m.scratch[:cap(m.scratch)] {
		if c != 0 {
			t.Fatalf("byte %d of the kept buffer is not zero after a panicking Seal", i)
		}
	}
}
