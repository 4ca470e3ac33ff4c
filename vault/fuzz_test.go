package vault

import (
	"bytes"
	"context"
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
		if !bytes.Equal(in, vec["session"]) || !bytes.Equal(plain, katPlaintext) {
			t.Fatalf("a blob other than the vector opened: %x", in)
		}
	})
}
