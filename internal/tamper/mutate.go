// Package tamper feeds hostile bytes to sessionvault's readers and counts
// the outcomes: every single-bit flip, every truncation and every appended
// byte of a real vault header and a real sealed session, sessions moved to
// another name or another vault, headers with a generation removed, and
// headers that claim absurd KDF costs or sizes. Each input must end in a
// typed error; none may be accepted, none may panic.
//
// The mutation generator is exported so that other packages' tests can
// reuse it; the harness itself is this package's tests:
//
//	go test ./internal/tamper
package tamper

import "strconv"

// Kind names a family of mutations.
type Kind string

// The mutation families that Mutations produces.
const (
	BitFlip  Kind = "bitflip"  // one bit of the input inverted
	Truncate Kind = "truncate" // the input cut to a shorter length (0 included)
	Append   Kind = "append"   // one byte (each of the 256 values) appended, or a longer tail
)

// Mutation is one hostile variant of an input.
type Mutation struct {
	Kind Kind
	// At is the bit index (BitFlip), the new length (Truncate) or the
	// appended byte value (Append, 0-255; 256 for a 1 KiB tail and 257 for
	// the input appended to itself).
	At int
}

// String describes the mutation, e.g. "bitflip 1234".
func (m Mutation) String() string {
	return string(m.Kind) + " " + strconv.Itoa(m.At)
}

// Count is the number of mutations Mutations yields for an input of n
// bytes: 8n bit flips, n truncations, 258 appends.
func Count(n int) int { return 8*n + n + 258 }

// Mutations calls yield with every mutation of orig, in a fresh buffer
// each time (the callee may keep or change it), until yield returns false.
// orig itself is never modified.
func Mutations(orig []byte, yield func(Mutation, []byte) bool) {
	for bit := 0; bit < 8*len(orig); bit++ {
		b := append([]byte(nil), orig...)
		b[bit/8] ^= 1 << (bit % 8)
		if !yield(Mutation{BitFlip, bit}, b) {
			return
		}
	}
	for n := 0; n < len(orig); n++ {
		if !yield(Mutation{Truncate, n}, append([]byte(nil), orig[:n]...)) {
			return
		}
	}
	for v := 0; v < 256; v++ {
		if !yield(Mutation{Append, v}, append(append([]byte(nil), orig...), byte(v))) {
			return
		}
	}
	tail := make([]byte, 1024)
	for i := range tail {
		tail[i] = byte(i * 7)
	}
	if !yield(Mutation{Append, 256}, append(append([]byte(nil), orig...), tail...)) {
		return
	}
	yield(Mutation{Append, 257}, append(append([]byte(nil), orig...), orig...))
}
