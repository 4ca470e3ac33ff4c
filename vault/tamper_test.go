package vault

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
)

// smallVault returns a vault with one passphrase slot, one generation and
// one small session "s", and the raw header and session blobs.
func smallVault(t *testing.T) (v *Vault, hdr, blob []byte) {
	t.Helper()
	v, b := newVault(t)
	seal(t, v, "s", "tok")
	ctx := context.Background()
	hdr, _, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	blob, _, err = b.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	return v, hdr, blob
}

// openHeader opens the vault header bytes hdr with the test passphrase,
// as Open does, without a backend.
func openHeader(t *testing.T, hdr []byte, pass string) error {
	t.Helper()
	b := newBackendWith(t, map[string][]byte{backends.HeaderName: hdr})
	v, err := Open(context.Background(), b, cheap(pass)...)
	if err == nil {
		v.Close()
	}
	return err
}

func newBackendWith(t testing.TB, blobs map[string][]byte) backends.Backend {
	t.Helper()
	b, _ := newMemory()
	for name, blob := range blobs {
		if _, err := b.Put(context.Background(), name, blob, backends.Absent); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func fixChecksum(hdr []byte) []byte {
	out := append([]byte(nil), hdr...)
	sum := sha256.Sum256(out[:len(out)-sumSize])
	copy(out[len(out)-sumSize:], sum[:])
	return out
}

// TestHeaderBitFlips: every single-bit flip of a small header (damage on
// disk) is rejected as corruption, never as a wrong passphrase, and
// before any key derivation.
func TestHeaderBitFlips(t *testing.T) {
	_, hdr, _ := smallVault(t)
	if err := openHeader(t, hdr, testPass); err != nil {
		t.Fatalf("intact header: %v", err)
	}
	before := kdf.Derivations()
	for i := range len(hdr) * 8 {
		bad := append([]byte(nil), hdr...)
		bad[i/8] ^= 1 << (i % 8)
		err := openHeader(t, bad, testPass)
		wantErr(t, err, ErrCorrupt, "header bit flip "+itoa(i))
	}
	if got := kdf.Derivations() - before; got != 0 {
		t.Fatalf("damaged headers ran argon2id %d times", got)
	}
}

// TestHeaderTamper: a single-bit change with the checksum recomputed (a
// deliberate edit) never opens. Changes to what the slot's check value
// covers (slot id, KDF parameters, salt, check) read as a wrong key: no
// one can tell those from a wrong passphrase. Changes to anything the key,
// once it fits, authenticates (generations, nonce, wrapped keys, MAC) are
// corruption.
func TestHeaderTamper(t *testing.T) {
	v, hdr, _ := smallVault(t)
	h := v.hdr
	slotStart := h.genPrefixLen() + 1
	s := &h.slots[0]
	checkEnd := slotStart + s.fixedLen()
	paramsStart := slotStart + 1 + idSize
	for i := range (len(hdr) - sumSize) * 8 {
		off := i / 8
		if off >= paramsStart && off < paramsStart+passphraseParamsSize-saltSize {
			// argon2id parameters: a flip makes them out of policy or
			// merely different (up to 1 GiB of memory to derive a wrong
			// key); TestHostileKDFParams covers them.
			continue
		}
		bad := append([]byte(nil), hdr...)
		bad[off] ^= 1 << (i % 8)
		err := openHeader(t, fixChecksum(bad), testPass)
		if err == nil {
			t.Fatalf("tampered header (bit %d) opened", i)
		}
		var want error
		switch {
		case off < magicSize:
			want = ErrCorrupt
		case off < magicSize+versionSize:
			want = ErrUnsupportedVersion
			if v := int(bad[magicSize])<<8 | int(bad[magicSize+1]); v >= formatVersion && v <= headerVersionService {
				// A version this package reads (3, from 1), whose
				// slots make the header another version.
				want = ErrCorrupt
			}
		case off < headerFixedSize: // vault id: bound into every subkey
			want = ErrWrongKey
		case off < slotStart+1: // generation count and list, slot count, slot kind
			want = ErrCorrupt // another structure, or authenticated data that no longer matches
		case off < paramsStart: // slot id
			want = ErrWrongKey
		case off < checkEnd: // salt, check
			want = ErrWrongKey
		default: // nonce, wrapped keys, MAC
			want = ErrCorrupt
		}
		wantErr(t, err, want, "tampered header bit "+itoa(i))
	}
}

// TestHeaderTruncationsAndAppends: every prefix of a header, and the
// header with bytes appended, is rejected as corruption.
func TestHeaderTruncationsAndAppends(t *testing.T) {
	_, hdr, _ := smallVault(t)
	for n := range len(hdr) {
		wantErr(t, openHeader(t, hdr[:n], testPass), ErrCorrupt, "header truncated to "+itoa(n))
	}
	for _, extra := range [][]byte{{0}, []byte("x"), make([]byte, 64)} {
		bad := append(append([]byte(nil), hdr...), extra...)
		wantErr(t, openHeader(t, bad, testPass), ErrCorrupt, "header with appended bytes")
		wantErr(t, openHeader(t, fixChecksum(append(bad, make([]byte, sumSize)...)), testPass), ErrCorrupt, "header with appended bytes, checksum fixed")
	}
}

// TestHostileKDFParams: a header whose passphrase slot claims 4 GiB of
// memory or 2^32-1 passes (checksum valid) is refused before any
// derivation, in well under 10 ms.
func TestHostileKDFParams(t *testing.T) {
	v, hdr, _ := smallVault(t)
	off := v.hdr.genPrefixLen() + 1 + 1 + idSize // slot 0's params
	cases := map[string]func(b []byte){
		"4 GiB memory":  func(b []byte) { binary.BigEndian.PutUint32(b[off+4:], 1<<32-1) },
		"2^32-1 passes": func(b []byte) { binary.BigEndian.PutUint32(b[off:], 1<<32-1) },
		"255 lanes":     func(b []byte) { b[off+8] = 255 },
		"zero memory":   func(b []byte) { binary.BigEndian.PutUint32(b[off+4:], 0) },
		"all at the limit": func(b []byte) {
			binary.BigEndian.PutUint32(b[off:], 1<<32-1)
			binary.BigEndian.PutUint32(b[off+4:], 1<<32-1)
		},
	}
	for name, mutate := range cases {
		bad := append([]byte(nil), hdr...)
		mutate(bad)
		bad = fixChecksum(bad)
		before := kdf.Derivations()
		start := time.Now()
		for _, policy := range []kdf.Policy{kdf.DefaultPolicy, kdf.InsecurePolicyForTesting} {
			b := newBackendWith(t, map[string][]byte{backends.HeaderName: bad})
			_, err := Open(context.Background(), b, WithPassphrase([]byte(testPass)), WithKDFPolicy(policy))
			wantErr(t, err, ErrPolicy, name)
			var pe *kdf.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: no *kdf.ParamError in %v", name, err)
			}
		}
		if d := time.Since(start); d > 10*time.Millisecond {
			t.Errorf("%s: refusing took %v, want < 10ms", name, d)
		}
		if kdf.Derivations() != before {
			t.Fatalf("%s: argon2id ran", name)
		}
	}
}

// TestSessionBitFlips: every single-bit flip of a small sealed session is
// rejected with the right error, and no plaintext comes back.
func TestSessionBitFlips(t *testing.T) {
	v, _, blob := smallVault(t)
	ctx := context.Background()
	for i := range len(blob) * 8 {
		bad := append([]byte(nil), blob...)
		bad[i/8] ^= 1 << (i % 8)
		plain, err := v.OpenSession(ctx, "s", bad)
		if plain != nil {
			t.Fatalf("bit %d: plaintext returned", i)
		}
		want := ErrCorrupt
		if off := i / 8; off >= magicSize && off < magicSize+versionSize {
			// Another version this package reads (2 to 3: chunked)
			// is damage; any other is an unknown version.
			if ver := binary.BigEndian.Uint16(bad[magicSize:]); envelopeHeaderLen(ver) == 0 {
				want = ErrUnsupportedVersion
			}
		}
		wantErr(t, err, want, "session bit flip "+itoa(i))
	}
}

func TestSessionTruncationsAndAppends(t *testing.T) {
	v, _, blob := smallVault(t)
	ctx := context.Background()
	for n := range len(blob) {
		plain, err := v.OpenSession(ctx, "s", append([]byte(nil), blob[:n]...))
		if plain != nil {
			t.Fatalf("truncated to %d: plaintext returned", n)
		}
		wantErr(t, err, ErrCorrupt, "session truncated to "+itoa(n))
	}
	for _, extra := range [][]byte{{0}, make([]byte, 16)} {
		_, err := v.OpenSession(ctx, "s", append(append([]byte(nil), blob...), extra...))
		wantErr(t, err, ErrCorrupt, "session with appended bytes")
	}
	if p, err := v.OpenSession(ctx, "s", blob); err != nil || string(p) != "tok" {
		t.Fatalf("intact blob: %q, %v", p, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
