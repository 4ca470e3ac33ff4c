package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
)

// fuzzPolicy accepts the cheapest parameters argon2 runs and nothing
// costly, so fuzzed headers that reach a derivation stay fast.
var fuzzPolicy = kdf.Policy{Floor: kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}, Ceiling: kdf.Params{Time: 2, MemoryKiB: 256, Threads: 4}}

// fuzzSeeds returns the golden and known-answer blobs.
func fuzzSeeds(f *testing.F) (headers, sessions [][]byte) {
	vec := katVectors(f)
	headers = append(headers, vec["header"])
	sessions = append(sessions, vec["session"])
	for _, g := range goldenVaults {
		dir := filepath.Join("testdata", "golden", g.dir)
		if b, err := os.ReadFile(filepath.Join(dir, "header")); err == nil {
			headers = append(headers, b)
		}
		for name := range g.sessions {
			if b, err := os.ReadFile(filepath.Join(dir, "session."+name)); err == nil {
				sessions = append(sessions, b)
			}
		}
	}
	return headers, sessions
}

// FuzzParseHeader: no input panics; an accepted header re-encodes to the
// same bytes; and with the checksum repaired (so the fuzzer gets past it)
// the same holds, and unlocking it with the known-answer keychain key
// never panics and succeeds only for an authentic header.
func FuzzParseHeader(f *testing.F) {
	headers, _ := fuzzSeeds(f)
	for _, h := range headers {
		f.Add(h)
		f.Add(h[:len(h)/2])
		f.Add(fixChecksum(append(h[:len(h)-sumSize-1], make([]byte, sumSize+1)...)))
	}
	kat := katVectors(f)["header"]
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(b []byte) {
			h, err := parseHeader(b, fuzzPolicy)
			if err != nil {
				return
			}
			if enc := h.encode(); !bytes.Equal(enc, b) {
				t.Fatalf("parse-then-encode differs:\n in %x\nout %x", b, enc)
			}
			s := h.slotByID(katKCSlotID)
			if s == nil || s.kind != KeychainSlot {
				return
			}
			keys, err := unwrapSlot(h, s, katKCKEK)
			if err != nil {
				return
			}
			defer destroyAll(keys)
			if h.verifyMAC(keys[len(keys)-1].Bytes()) && !bytes.Equal(b, kat) {
				t.Fatalf("a header other than the vector authenticated: %x", b)
			}
		}
		check(data)
		if len(data) >= sumSize {
			check(fixChecksum(data))
		}
	})
}

// FuzzOpenSession: no input panics, and only the authentic sealed session
// opens; for anything else no plaintext is returned.
func FuzzOpenSession(f *testing.F) {
	_, sessions := fuzzSeeds(f)
	for _, s := range sessions {
		f.Add(s)
		f.Add(s[:envelopeHeaderSize])
	}
	// Version 3: the section 9.4 vector (it opens in this vault), and
	// its header with short bodies, so the fuzzer starts at the chunk
	// layout checks.
	v3 := katBlobV3()
	f.Add(append([]byte(nil), v3...)) // a seed may be opened in place
	for _, n := range []int{0, tagSize, tagSize + 1, chunkSize + tagSize, chunkSize + 2*tagSize + 1} {
		f.Add(join(v3, make([]byte, n)))
	}
	vec := katVectors(f)
	b := newBackendWith(f, map[string][]byte{backends.HeaderName: vec["header"]})
	store := newKeyStore()
	store.keys[account(katVaultID, katKCSlotID)] = katKCKEK
	v, err := Open(context.Background(), b, WithKeyStore(store))
	if err != nil {
		f.Fatal(err)
	}
	defer v.Close()
	f.Fuzz(func(t *testing.T, blob []byte) {
		in := append([]byte(nil), blob...)
		plain, err := v.OpenSession(context.Background(), katName, blob)
		if err != nil {
			if plain != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		if bytes.Equal(in, v3) && bytes.Equal(plain, katPlaintextV3()) {
			return
		}
		if !bytes.Equal(in, vec["session"]) || !bytes.Equal(plain, katPlaintext) {
			t.Fatalf("a blob other than the vector opened: %x", in[:min(len(in), 256)])
		}
	})
}

// katBlobV3 is the blob of the section 9.4 vector.
func katBlobV3() []byte {
	aead := newAEAD(katDataKey, &katVaultID, labelSessionSeal, nil)
	return sealEnvelopeNonce(nil, aead, &katVaultID, chunkVersion, 1, 0x0102030405060708, katName, katPlaintextV3(), katNonce[:noncePrefixSize])
}

// FuzzChunkedEdits edits the section 9.4 blob (three chunks) with a
// program the fuzzer writes (cuts, byte flips, chunk swaps, drops,
// repeats, chunks of another seal) and opens the result: it opens only
// if the edits gave back the original bytes, and otherwise fails with
// ErrCorrupt, returns no plaintext and leaves none in the blob.
func FuzzChunkedEdits(f *testing.F) {
	for _, prog := range [][]byte{
		nil, {0, 1, 0}, {1, 7, 3}, {2, 0, 1}, {3, 2, 0}, {4, 1, 0}, {5, 0, 2},
		{2, 0, 1, 2, 0, 1}, {3, 2, 0, 5, 2, 2}, {1, 200, 1, 1, 200, 1},
	} {
		f.Add(prog)
	}
	base := katBlobV3()
	aead := newAEAD(katDataKey, &katVaultID, labelSessionSeal, nil)
	other := sealEnvelopeNonce(nil, aead, &katVaultID, chunkVersion, 1, 0x0102030405060708, katName, katPlaintextV3(), seqBytes(0x41, noncePrefixSize))
	plain := katPlaintextV3()
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 30 {
			return
		}
		hdr := base[:envelopeV3HeaderSize]
		var chunks [][]byte
		for i := range 3 {
			chunks = append(chunks, chunkAt(base, i))
		}
		var flips [][2]int // offset into the joined blob, xor mask
		cut := 0
		for ; len(prog) >= 3; prog = prog[3:] {
			op, a, b := prog[0]%6, int(prog[1]), int(prog[2])
			switch op {
			case 0: // cut a bytes (times 257, to reach chunk boundaries) off the end
				cut += a*257 + b
			case 1: // flip: byte a*521+b, mask bit
				flips = append(flips, [2]int{a*521 + b, 1 << (b % 8)})
			case 2: // swap two chunks
				if len(chunks) > 0 {
					i, j := a%len(chunks), b%len(chunks)
					chunks[i], chunks[j] = chunks[j], chunks[i]
				}
			case 3: // drop a chunk
				if len(chunks) > 0 {
					i := a % len(chunks)
					chunks = append(chunks[:i:i], chunks[i+1:]...)
				}
			case 4: // repeat a chunk after itself
				if len(chunks) > 0 && len(chunks) < 6 {
					i := a % len(chunks)
					chunks = append(chunks[:i+1:i+1], chunks[i:]...)
				}
			case 5: // replace a chunk by the same index of another seal
				if len(chunks) > 0 {
					chunks[a%len(chunks)] = chunkAt(other, b%3)
				}
			}
		}
		blob := join(hdr, chunks...)
		for _, fl := range flips {
			blob[fl[0]%len(blob)] ^= byte(fl[1])
		}
		blob = blob[:len(blob)-min(cut, len(blob))]
		same := bytes.Equal(blob, base)
		env, err := parseEnvelope(katName, blob)
		var out []byte
		if err == nil {
			if env.version != chunkVersion {
				// A flipped version field: versions 1 and 2 go
				// through their own path, which FuzzOpenSession
				// covers.
				out, err = openEnvelope(aead, &katVaultID, katName, env)
			} else {
				out, err = openChunked(aead, &katVaultID, katName, env)
			}
		}
		if same {
			if err != nil || !bytes.Equal(out, plain) {
				t.Fatalf("the unedited blob does not open: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("an edited blob opened (%d bytes)", len(blob))
		}
		if out != nil {
			t.Fatal("plaintext returned with an error")
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("error %v, want ErrCorrupt or ErrUnsupportedVersion", err)
		}
		if bytes.Contains(blob, plain[:64]) || bytes.Contains(blob, plain[chunkSize:chunkSize+64]) {
			t.Fatal("plaintext left in the blob")
		}
	})
}

// FuzzChunkLayout: the chunk layout of a version 3 body of any length is
// refused or consistent: every chunk but the last full, the last of 1 to
// chunkSize bytes of plaintext, the lengths adding up, and the envelope
// that SealedSize gives for that plaintext (above chunkedThreshold) of
// the same length.
func FuzzChunkLayout(f *testing.F) {
	for _, n := range []int{0, 16, 17, chunkSize + tagSize, chunkSize + tagSize + 16, chunkSize + tagSize + 17, MaxSealedSize - envelopeV3HeaderSize} {
		f.Add(uint32(n))
	}
	f.Fuzz(func(t *testing.T, body uint32) {
		if int(body) > MaxSealedSize-envelopeV3HeaderSize {
			return // refused by parseEnvelope before the layout
		}
		n, plain, ok := chunkLayout(int(body))
		if !ok {
			if last := int(body) % (chunkSize + tagSize); int(body) >= tagSize+1 && (last == 0 || last > tagSize) {
				t.Fatalf("body %d refused", body)
			}
			return
		}
		last := int(body) - (n-1)*(chunkSize+tagSize)
		if n < 1 || n > maxChunks || last < tagSize+1 || last > chunkSize+tagSize || plain != (n-1)*chunkSize+last-tagSize {
			t.Fatalf("body %d: %d chunks, last %d, plaintext %d", body, n, last, plain)
		}
		if plain > chunkedThreshold && SealedSize(plain) != envelopeV3HeaderSize+int(body) {
			t.Fatalf("body %d: SealedSize(%d) = %d", body, plain, SealedSize(plain))
		}
	})
}
