package vault

import (
	"crypto/cipher"
	"reflect"
	"unsafe"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Wipe overwrites b with zeros, in a way the compiler cannot drop as a dead
// store. Use it on the buffers a vault hands you or takes from you once
// you are done with them: a passphrase after Open or Create (the vault
// keeps its own copy until Close), the plaintext Store.Open returns, a key
// read from a KeyStore. It wipes only b's own bytes: copies made earlier
// (a string made from b, a slice that was grown and reallocated) are out
// of its reach.
func Wipe(b []byte) { secmem.Wipe(b) }

// wipeAEAD zeroes the key an AEAD from golang.org/x/crypto/chacha20poly1305
// keeps inside itself, so that Close leaves no copy of a session key on
// the Go heap. Those AEADs are pointers to structs holding only byte
// arrays (the key); wipeAEAD checks that layout with reflect and does
// nothing (returning false) for anything else, so a future x/crypto that
// changes it is detected by TestWipeAEAD instead of corrupting memory.
func wipeAEAD(a cipher.AEAD) bool {
	v := reflect.ValueOf(a)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	t := v.Type().Elem()
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := range t.NumField() {
		f := t.Field(i).Type
		if f.Kind() != reflect.Array || f.Elem().Kind() != reflect.Uint8 {
			return false
		}
	}
	// The struct contains no pointers, so zeroing it behind the garbage
	// collector's back is safe.
	clear(unsafe.Slice((*byte)(v.UnsafePointer()), t.Size()))
	return true
}
