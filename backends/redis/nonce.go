package redis

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// nonceSource hands out the random parts of new versions. They need
// uniqueness, not secrecy (anyone who reads the key sees them), but every
// one is 64 bits from crypto/rand: the source reads nonceBatch of them at
// once and gives them out in turn, so that a write costs a copy under a
// mutex, not a call into the OS generator. The zero value is ready to use.
type nonceSource struct {
	mu   sync.Mutex
	buf  [nonceBatch * nonceBytes]byte
	left int // bytes at the end of buf not handed out yet
}

// appendHex appends the next nonce, 2*nonceBytes lowercase hex digits, to
// dst. A byte handed out is cleared from the buffer.
func (s *nonceSource) appendHex(dst []byte) ([]byte, error) {
	var n [nonceBytes]byte
	s.mu.Lock()
	if s.left == 0 {
		if _, err := rand.Read(s.buf[:]); err != nil {
			s.mu.Unlock()
			return dst, err
		}
		s.left = len(s.buf)
	}
	i := len(s.buf) - s.left
	copy(n[:], s.buf[i:])
	clear(s.buf[i : i+nonceBytes])
	s.left -= nonceBytes
	s.mu.Unlock()
	return hex.AppendEncode(dst, n[:]), nil
}

// newNonce returns the next nonce of s as a string.
func (s *nonceSource) newNonce() (string, error) {
	var buf [2 * nonceBytes]byte
	out, err := s.appendHex(buf[:0])
	if err != nil {
		return "", err
	}
	return string(out), nil
}
