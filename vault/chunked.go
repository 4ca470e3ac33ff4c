package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Chunked envelopes (envelope version 3, docs/FORMAT.md section 4.4).
//
// A plaintext above chunkedThreshold is sealed as a sequence of chunks of
// chunkSize bytes (the last one shorter or equal), each its own
// XChaCha20-Poly1305 message under the session key, so that up to
// GOMAXPROCS cores seal and open one session at once. The construction is
// that of STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
// authenticated-encryption and its nonce-reuse misuse-resistance"): the
// nonce of chunk i is the envelope's random 16-byte nonce prefix, then i
// as a u32, then a u32 that is 1 for the last chunk and 0 for the others.
// Every chunk authenticates the same additional data as a version 2
// envelope (the envelope header with its version, generation and rollback
// counter, the vault id and the session name). So a chunk moved to
// another index, another blob, another name or another seal of the same
// name fails its tag, and so does a blob cut at a chunk boundary: its new
// last chunk was sealed as not the last.

// chunkVersion is the envelope version of chunked envelopes.
const chunkVersion = 3

// sealedSize is the length of the envelope that seals a plaintext of n
// bytes: version 2 up to chunkedThreshold, version 3 above.
func sealedSize(n int) int {
	if n <= chunkedThreshold {
		return envelopeV2HeaderSize + n + tagSize
	}
	return envelopeV3HeaderSize + n + chunkCount(n)*tagSize
}

// SealedSize returns the length of the blob that SealSession (or
// Store.Seal) makes of a plaintext of n bytes, for 0 <= n <=
// MaxPlaintextSize: 62 bytes more than n up to 256 KiB, and 38 bytes
// plus 16 per 64 KiB chunk above (docs/FORMAT.md section 4).
func SealedSize(n int) int { return sealedSize(n) }

// chunkCount is the number of chunks of an n-byte plaintext (n > 0).
func chunkCount(n int) int { return (n + chunkSize - 1) / chunkSize }

// chunkNonce writes the nonce of chunk i into nonce: the prefix, i, and
// the last-chunk flag.
func chunkNonce(nonce *[nonceSize]byte, prefix []byte, i int, last bool) {
	copy(nonce[:noncePrefixSize], prefix)
	binary.BigEndian.PutUint32(nonce[noncePrefixSize:], uint32(i))
	var f uint32
	if last {
		f = 1
	}
	binary.BigEndian.PutUint32(nonce[noncePrefixSize+4:], f)
}

// chunkWorkers is how many goroutines seal or open n chunks: one per
// core the Go scheduler uses, never more than there are chunks.
func chunkWorkers(n int) int { return max(1, min(runtime.GOMAXPROCS(0), n)) }

// forChunks calls fn for every chunk index in [0, n) on chunkWorkers(n)
// goroutines, the caller's among them, and returns when all are done.
// It stops handing out chunks once fn has returned false, and reports
// whether every call returned true.
func forChunks(n int, fn func(i int, nonce *[nonceSize]byte) bool) bool {
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	work := func() {
		nonce := new([nonceSize]byte)
		for !failed.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if !fn(i, nonce) {
				failed.Store(true)
			}
		}
	}
	for range chunkWorkers(n) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return !failed.Load()
}

// sealChunked appends to dst the version 3 envelope of plaintext (1 to
// MaxPlaintextSize bytes) for name under gen and its AEAD, with counter
// counter and nonce prefix prefix (nil: a random one). The chunks are
// sealed in parallel into dst's new bytes, which are allocated once.
func sealChunked(dst []byte, aead cipher.AEAD, vaultID *[idSize]byte, gen uint32, counter uint64, name string, plaintext, prefix []byte) []byte {
	n := chunkCount(len(plaintext))
	if len(plaintext) == 0 || n > maxChunks {
		panic("vault: sealChunked: plaintext size out of range")
	}
	start := len(dst)
	total := envelopeV3HeaderSize + len(plaintext) + n*tagSize
	if cap(dst)-start < total {
		dst = append(make([]byte, 0, start+total), dst...)
	}
	dst = dst[:start+total]
	hdr := dst[start : start+envelopeV3HeaderSize]
	copy(hdr, envelopeMagic)
	binary.BigEndian.PutUint16(hdr[magicSize:], chunkVersion)
	binary.BigEndian.PutUint32(hdr[magicSize+versionSize:], gen)
	binary.BigEndian.PutUint64(hdr[magicSize+versionSize+genSize:], counter)
	np := hdr[envelopeV3HeaderSize-noncePrefixSize:]
	if prefix == nil {
		rand.Read(np)
	} else {
		copy(np, prefix)
	}
	aadBuf := aadPool.Get().(*[maxAADSize]byte)
	defer aadPool.Put(aadBuf)
	aad := sessionAAD(aadBuf[:], hdr, vaultID, name) // read only from here on
	body := dst[start+envelopeV3HeaderSize:]
	forChunks(n, func(i int, nonce *[nonceSize]byte) bool {
		p := plaintext[i*chunkSize : min(len(plaintext), (i+1)*chunkSize)]
		off := i * (chunkSize + tagSize)
		chunkNonce(nonce, np, i, i == n-1)
		aead.Seal(body[off:off:off+len(p)+tagSize], nonce[:], p, aad)
		return true
	})
	return dst
}

// chunkLayout checks the body (everything after the header) of a version
// 3 envelope and returns its chunk count and plaintext length: every
// chunk but the last is chunkSize+tagSize bytes, the last is tagSize+1
// to chunkSize+tagSize bytes, and at most maxChunks chunks (checked
// first, so that no count overflows on a 32-bit platform).
func chunkLayout(body int) (chunks, plain int, ok bool) {
	if body < tagSize+1 || body > maxChunks*(chunkSize+tagSize) {
		return 0, 0, false
	}
	chunks = (body + chunkSize + tagSize - 1) / (chunkSize + tagSize)
	last := body - (chunks-1)*(chunkSize+tagSize)
	if last < tagSize+1 {
		return 0, 0, false
	}
	return chunks, body - chunks*tagSize, true
}

// openChunked opens a parsed version 3 envelope in place: every chunk is
// authenticated and decrypted where it lies (in parallel), then, only if
// all of them authenticated, the plaintext pieces are moved together to
// the start of the ciphertext and the bytes after them zeroed. On
// failure the whole ciphertext is zeroed and no plaintext is returned.
func openChunked(aead cipher.AEAD, vaultID *[idSize]byte, name string, env envelope) ([]byte, error) {
	body := env.ciphertext
	n, plainLen, ok := chunkLayout(len(body))
	if !ok || n > maxChunks {
		// parseEnvelope refuses these; kept so that this function is
		// safe on its own.
		return nil, &FormatError{Structure: "session", Name: name, Field: "size", Reason: "not a whole number of chunks", Err: ErrCorrupt}
	}
	aadBuf := aadPool.Get().(*[maxAADSize]byte)
	defer aadPool.Put(aadBuf)
	aad := sessionAAD(aadBuf[:], env.hdr, vaultID, name)
	var bad atomic.Int64
	bad.Store(-1)
	ok = forChunks(n, func(i int, nonce *[nonceSize]byte) bool {
		off := i * (chunkSize + tagSize)
		c := body[off:min(len(body), off+chunkSize+tagSize)]
		chunkNonce(nonce, env.nonce, i, i == n-1)
		if _, err := aead.Open(c[:0], nonce[:], c, aad); err != nil {
			bad.CompareAndSwap(-1, int64(i))
			return false
		}
		return true
	})
	if !ok {
		secmem.Wipe(body)
		return nil, &FormatError{Structure: "session", Name: name, Field: fmt.Sprintf("chunk %d of %d tag", bad.Load(), n), Reason: "authentication failed: damaged, truncated, reordered, tampered with, or sealed for another name or vault", Err: ErrCorrupt}
	}
	for i := 1; i < n; i++ {
		src := body[i*(chunkSize+tagSize):]
		copy(body[i*chunkSize:], src[:min(chunkSize, len(src)-tagSize)])
	}
	secmem.Wipe(body[plainLen:])
	return body[:plainLen:plainLen], nil
}
