package session

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Secret is a token, a cookie value or a client secret: a byte buffer that
// never shows its bytes by accident and that Destroy overwrites with zeros.
//
// A Secret redacts itself in every fmt verb (%v %s %q %x %X %d %#v ...), in
// log/slog, in encoding/json (MarshalJSON writes "[REDACTED]") and so in
// error strings built from it. Only the session's own sealing encoder
// writes the real bytes.
//
// The zero Secret is empty. Copying a Secret value copies a reference to
// the same buffer; use Clone for an independent copy.
type Secret struct {
	// The bytes sit behind a pointer on purpose: when fmt meets a bad
	// verb (%p of a struct, %s of a pointer field) it prints the value
	// by reflection without calling Format, and at that depth it prints
	// a pointer as an address, never what it points to.
	p *secretBuf
}

type secretBuf struct{ b []byte }

// NewSecret returns a Secret holding a copy of b. The caller still owns b
// and should wipe it when done.
func NewSecret(b []byte) Secret {
	if b == nil {
		return Secret{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	return secretOf(c)
}

// newSecretPair returns NewSecret(a), NewSecret(b) in two allocations
// instead of four (a token pair is copied on every update): one array
// holds both copies, each capped at its own length so that neither
// reaches the other's bytes, and each is wiped by its own Destroy.
func newSecretPair(a, b []byte) (Secret, Secret) {
	if a == nil || b == nil {
		return NewSecret(a), NewSecret(b)
	}
	bufs := new([2]secretBuf)
	c := make([]byte, len(a)+len(b))
	copy(c, a)
	copy(c[len(a):], b)
	bufs[0].b = c[:len(a):len(a)]
	bufs[1].b = c[len(a):]
	return Secret{p: &bufs[0]}, Secret{p: &bufs[1]}
}

// secretOf wraps b (taking ownership) without copying.
func secretOf(b []byte) Secret { return Secret{p: &secretBuf{b: b}} }

// bytes returns the buffer (nil for the zero Secret).
func (s Secret) bytes() []byte {
	if s.p == nil {
		return nil
	}
	return s.p.b
}

// Bytes returns the Secret's buffer itself, not a copy, so that it can be
// written to a socket or a hash without leaving a copy behind. The caller
// must not modify it, must not keep it after Destroy, and must not turn it
// into a string (a Go string cannot be wiped).
func (s Secret) Bytes() []byte { return s.bytes() }

// Len returns the length of the secret in bytes.
func (s Secret) Len() int { return len(s.bytes()) }

// IsEmpty reports whether the Secret holds no bytes (zero or destroyed).
func (s Secret) IsEmpty() bool { return len(s.bytes()) == 0 }

// Equal reports whether s and t hold the same bytes, in time that depends
// only on their lengths.
func (s Secret) Equal(t Secret) bool {
	return subtle.ConstantTimeCompare(s.bytes(), t.bytes()) == 1
}

// Clone returns an independent copy of s; destroy it separately.
func (s Secret) Clone() Secret { return NewSecret(s.bytes()) }

// Destroy overwrites the buffer with zeros and empties s. Every copy of
// the Secret value shares the buffer and is emptied too. It is safe on a
// nil pointer and on an already destroyed Secret.
func (s *Secret) Destroy() {
	if s == nil || s.p == nil {
		return
	}
	wipe(s.p.b)
	s.p.b = nil
}

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// GoString returns a redacted Go-syntax form, for %#v.
func (s Secret) GoString() string { return "session.Secret(" + redacted + ")" }

// Format implements fmt.Formatter so that every verb, including %x, %q,
// %d and %#v, prints "[REDACTED]" and never the bytes.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, redacted)
}

// LogValue implements slog.LogValuer: a Secret logs as "[REDACTED]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON writes "[REDACTED]": encoding/json never sees the bytes.
// Sessions are serialized for storage by the sealing path of this package
// (see ParseSession and AuthSession.MarshalPlaintext), not by encoding/json.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// errSecretUnmarshal is returned by Secret.UnmarshalJSON.
var errSecretUnmarshal = errors.New("session: a Secret cannot be decoded with encoding/json (it would leave string copies); use session.ParseSession")

// UnmarshalJSON refuses: encoding/json would leave unwipeable copies of
// the value, and a session round-tripped through MarshalJSON would come
// back with "[REDACTED]" as its tokens. Use ParseSession.
func (s *Secret) UnmarshalJSON([]byte) error { return errSecretUnmarshal }

// UnmarshalJSON refuses, as Secret.UnmarshalJSON does; without it
// encoding/json would silently fill a session with nothing (its keys are
// snake_case). Use ParseSession.
func (s *AuthSession) UnmarshalJSON([]byte) error { return errSecretUnmarshal }

// UnmarshalJSON refuses, as Secret.UnmarshalJSON does.
func (t *AuthTokens) UnmarshalJSON([]byte) error { return errSecretUnmarshal }

// UnmarshalJSON refuses, as Secret.UnmarshalJSON does.
func (c *AuthCookies) UnmarshalJSON([]byte) error { return errSecretUnmarshal }

// UnmarshalJSON refuses, as Secret.UnmarshalJSON does.
func (t *TurnkeySession) UnmarshalJSON([]byte) error { return errSecretUnmarshal }

// wipe overwrites b with zeros (secmem.Wipe keeps the compiler from
// treating the stores as dead).
func wipe(b []byte) { secmem.Wipe(b) }

// optSecret returns a new *Secret holding a copy of b, or nil for nil b.
func optSecret(b []byte) *Secret {
	if b == nil {
		return nil
	}
	s := NewSecret(b)
	return &s
}

// cloneOpt deep-copies an optional secret.
func cloneOpt(s *Secret) *Secret {
	if s == nil {
		return nil
	}
	c := s.Clone()
	return &c
}
