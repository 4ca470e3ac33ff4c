package vault

import (
	"bytes"
	"crypto/cipher"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func newAEADForKey(t testing.TB, key []byte) cipher.AEAD {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestWipeAEAD checks wipeAEAD against the pinned x/crypto: after it, the
// AEAD behaves as one with an all-zero key. If x/crypto changes its
// layout, wipeAEAD returns false and this test fails.
func TestWipeAEAD(t *testing.T) {
	key := bytes.Repeat([]byte{0xA5}, keySize)
	a := newAEADForKey(t, key)
	nonce := make([]byte, nonceSize)
	before := a.Seal(nil, nonce, []byte("hello"), nil)
	if !wipeAEAD(a) {
		t.Fatal("wipeAEAD does not recognise x/crypto's XChaCha20-Poly1305")
	}
	after := a.Seal(nil, nonce, []byte("hello"), nil)
	want := newAEADForKey(t, make([]byte, keySize)).Seal(nil, nonce, []byte("hello"), nil)
	if bytes.Equal(before, after) || !bytes.Equal(after, want) {
		t.Fatal("wipeAEAD did not zero the key")
	}
	if wipeAEAD(nil) {
		t.Fatal("wipeAEAD(nil) = true")
	}
}

// TestWipe checks the exported Wipe zeroes every byte, and only b's.
func TestWipe(t *testing.T) {
	buf := bytes.Repeat([]byte{0xA5}, 48)
	Wipe(buf[8:40])
	for i, c := range buf {
		want := byte(0xA5)
		if i >= 8 && i < 40 {
			want = 0
		}
		if c != want {
			t.Fatalf("byte %d is %#x after Wipe(buf[8:40]), want %#x", i, c, want)
		}
	}
	Wipe(nil) // no panic on an empty slice
}
