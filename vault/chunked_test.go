package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"unsafe"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/retired"
)

// Envelope version 3 (chunked.go, docs/FORMAT.md sections 4.4 and 9.4).

// katPlaintextV3 is the plaintext of the section 9.4 vector: two full
// chunks and one of 100 bytes, byte j = j mod 251.
func katPlaintextV3() []byte {
	p := make([]byte, 2*chunkSize+100)
	for j := range p {
		p[j] = byte(j % 251)
	}
	return p
}

func TestKnownAnswerEnvelopeV3(t *testing.T) {
	vec := katVectors(t)
	aead := newAEAD(katDataKey, &katVaultID, labelSessionSeal, nil)
	plain := katPlaintextV3()
	for _, procs := range []int{1, 2, 5} {
		prev := runtime.GOMAXPROCS(procs)
		got := sealEnvelopeNonce(nil, aead, &katVaultID, chunkVersion, 1, 0x0102030405060708, katName, plain, katNonce[:noncePrefixSize])
		runtime.GOMAXPROCS(prev)
		if len(got) != envelopeV3HeaderSize+len(plain)+3*tagSize {
			t.Fatalf("GOMAXPROCS %d: %d bytes", procs, len(got))
		}
		var tags []byte
		for off := envelopeV3HeaderSize + chunkSize; off <= len(got); off += chunkSize + tagSize {
			tags = append(tags, got[off:off+tagSize]...)
		}
		tags = append(tags, got[len(got)-tagSize:]...)
		sum := sha256.Sum256(got)
		switch {
		case !bytes.Equal(got[:envelopeV3HeaderSize+32], vec["session_v3_head"]):
			t.Fatalf("GOMAXPROCS %d: head %x", procs, got[:envelopeV3HeaderSize+32])
		case !bytes.Equal(tags, vec["session_v3_tags"]):
			t.Fatalf("GOMAXPROCS %d: tags %x", procs, tags)
		case !bytes.Equal(got[envelopeV3HeaderSize+2*(chunkSize+tagSize):], vec["session_v3_last_chunk"]):
			t.Fatalf("GOMAXPROCS %d: last chunk differs", procs)
		case !bytes.Equal(sum[:], vec["session_v3_sha256"]):
			t.Fatalf("GOMAXPROCS %d: SHA-256 %x", procs, sum)
		}
		env, err := parseEnvelope(katName, got)
		if err != nil || env.version != 3 || env.counter != 0x0102030405060708 || env.gen != 1 {
			t.Fatalf("parse: %+v, %v", env, err)
		}
		out, err := openEnvelope(aead, &katVaultID, katName, env)
		if err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("GOMAXPROCS %d: open: %v", procs, err)
		}
	}
}

// pattern returns n bytes that differ from chunk to chunk.
func pattern(n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(j*7 + j/chunkSize)
	}
	return p
}

// TestChunkedRoundTrip: a session above chunkedThreshold is stored as
// version 3, one at or below it as version 2, each of SealedSize bytes,
// and every size opens to its plaintext, in place in the blob it was
// read into, with the bytes after the plaintext zeroed.
func TestChunkedRoundTrip(t *testing.T) {
	v, b := newVault(t)
	ctx := context.Background()
	for _, n := range []int{
		chunkedThreshold,            // version 2
		chunkedThreshold + 1,        // 5 chunks, the last of 1 byte
		6 * chunkSize,               // the last chunk full
		6*chunkSize + chunkSize - 1, // the last chunk one byte short
		MaxPlaintextSize,            // 16 full chunks
	} {
		plain := pattern(n)
		if _, err := v.Store("big").Seal(ctx, plain, backends.Any); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		blob, _, err := b.Get(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		want := uint16(chunkVersion)
		if n <= chunkedThreshold {
			want = envelopeVersion
		}
		if got := binary.BigEndian.Uint16(blob[magicSize:]); got != want || len(blob) != SealedSize(n) {
			t.Fatalf("%d bytes: version %d, %d bytes; want version %d, %d bytes", n, got, len(blob), want, SealedSize(n))
		}
		out, err := v.OpenSession(ctx, "big", blob)
		if err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("%d bytes: open: %v", n, err)
		}
		hl := envelopeHeaderLen(want)
		if unsafe.SliceData(out) != &blob[hl] {
			t.Fatalf("%d bytes: the plaintext is not in the blob's memory", n)
		}
		if tail := blob[hl+n:]; !bytes.Equal(tail, make([]byte, len(tail))) && want == chunkVersion {
			t.Fatalf("%d bytes: %d bytes after the plaintext not zeroed", n, len(tail))
		}
		if got := open(t, v, "big"); got != string(plain) {
			t.Fatalf("%d bytes: Store.Open differs", n)
		}
	}
	if SealedSize(MaxPlaintextSize) != MaxSealedSize || MaxSealedSize > backends.MaxBlobSize {
		t.Fatalf("SealedSize(max) %d, MaxSealedSize %d, backends.MaxBlobSize %d", SealedSize(MaxPlaintextSize), MaxSealedSize, backends.MaxBlobSize)
	}
	if SealedSize(2048) != 2048+envelopeV2HeaderSize+tagSize || maxChunks != 16 {
		t.Fatalf("SealedSize(2048) %d, maxChunks %d", SealedSize(2048), maxChunks)
	}
}

// chunked seals n bytes as a version 3 envelope for name in v and
// returns the blob.
func chunked(t *testing.T, v *Vault, name string, n int) []byte {
	t.Helper()
	blob, err := v.SealSession(name, pattern(n))
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(blob[magicSize:]) != chunkVersion {
		t.Fatal("not a chunked envelope")
	}
	return blob
}

// chunkAt returns chunk i of a version 3 blob.
func chunkAt(blob []byte, i int) []byte {
	off := envelopeV3HeaderSize + i*(chunkSize+tagSize)
	return blob[off:min(len(blob), off+chunkSize+tagSize)]
}

// join builds a version 3 blob from a header and chunks.
func join(hdr []byte, chunks ...[]byte) []byte {
	out := append([]byte(nil), hdr[:envelopeV3HeaderSize]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

// TestChunkedTamper: every way of cutting, reordering, swapping or
// flipping the chunks of a version 3 envelope fails with ErrCorrupt (or
// ErrUnsupportedVersion for the version field), returns no plaintext and
// leaves no plaintext in the blob.
func TestChunkedTamper(t *testing.T) {
	v, _ := newVault(t)
	ctx := context.Background()
	const n = 4*chunkSize + 1000 // 5 chunks
	a := chunked(t, v, "s", n)
	a2 := chunked(t, v, "s", n) // the same name sealed again
	other := chunked(t, v, "other", n)
	ch := func(b []byte, i int) []byte { return chunkAt(b, i) }
	flip := func(off int) []byte { b := append([]byte(nil), a...); b[off] ^= 0x01; return b }
	setVersion := func(ver uint16) []byte {
		b := append([]byte(nil), a...)
		binary.BigEndian.PutUint16(b[magicSize:], ver)
		return b
	}
	short := pattern(4*chunkSize + 999) // the same plaintext less its last byte
	shortBlob, err := v.SealSession("s", short)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		what string
		blob []byte
		want error
	}{
		{"cut by one byte", a[:len(a)-1], ErrCorrupt},
		{"cut inside the last chunk's tag", a[:len(a)-tagSize+1], ErrCorrupt},
		{"last chunk dropped (cut at a chunk boundary)", join(a, ch(a, 0), ch(a, 1), ch(a, 2), ch(a, 3)), ErrCorrupt},
		{"cut after the first chunk", join(a, ch(a, 0)), ErrCorrupt},
		{"header only", a[:envelopeV3HeaderSize], ErrCorrupt},
		{"header and a tag", a[:envelopeV3HeaderSize+tagSize], ErrCorrupt},
		{"middle chunk dropped", join(a, ch(a, 0), ch(a, 1), ch(a, 3), ch(a, 4)), ErrCorrupt},
		{"two chunks swapped", join(a, ch(a, 1), ch(a, 0), ch(a, 2), ch(a, 3), ch(a, 4)), ErrCorrupt},
		{"chunks rotated", join(a, ch(a, 1), ch(a, 2), ch(a, 3), ch(a, 0), ch(a, 4)), ErrCorrupt},
		{"a chunk repeated", join(a, ch(a, 0), ch(a, 0), ch(a, 2), ch(a, 3), ch(a, 4)), ErrCorrupt},
		{"a chunk from another seal of the name", join(a, ch(a, 0), ch(a2, 1), ch(a, 2), ch(a, 3), ch(a, 4)), ErrCorrupt},
		{"the last chunk from another seal of the name", join(a, ch(a, 0), ch(a, 1), ch(a, 2), ch(a, 3), ch(a2, 4)), ErrCorrupt},
		{"a chunk from another name", join(a, ch(a, 0), ch(a, 1), ch(other, 2), ch(a, 3), ch(a, 4)), ErrCorrupt},
		{"the header of another seal", join(a2, ch(a, 0), ch(a, 1), ch(a, 2), ch(a, 3), ch(a, 4)), ErrCorrupt},
		{"the last chunk of a shorter seal", join(a, ch(a, 0), ch(a, 1), ch(a, 2), ch(a, 3), ch(shortBlob, 4)), ErrCorrupt},
		{"a chunk appended", join(a, ch(a, 0), ch(a, 1), ch(a, 2), ch(a, 3), ch(a, 4), ch(a2, 4)), ErrCorrupt},
		{"a byte appended", append(append([]byte(nil), a...), 0), ErrCorrupt},
		{"another name's blob", other, ErrCorrupt},
		{"generation flipped", flip(magicSize + versionSize + 3), ErrCorrupt},
		{"counter flipped", flip(magicSize + versionSize + genSize + 7), ErrCorrupt},
		{"nonce prefix flipped", flip(envelopeV3HeaderSize - 1), ErrCorrupt},
		{"first chunk flipped", flip(envelopeV3HeaderSize), ErrCorrupt},
		{"a tag flipped", flip(envelopeV3HeaderSize + 2*(chunkSize+tagSize) - 1), ErrCorrupt},
		{"last byte flipped", flip(len(a) - 1), ErrCorrupt},
		{"version 3 read as 2", setVersion(2), ErrCorrupt},
		{"version 4", setVersion(4), ErrUnsupportedVersion},
	}
	for _, c := range cases {
		blob := append([]byte(nil), c.blob...)
		plain, err := v.OpenSession(ctx, "s", blob)
		if plain != nil {
			t.Fatalf("%s: plaintext returned", c.what)
		}
		wantErr(t, err, c.want, c.what)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Name != "s" {
			t.Fatalf("%s: %v is not a *FormatError for the session", c.what, err)
		}
		if len(blob) > envelopeV3HeaderSize && bytes.Contains(blob[envelopeV3HeaderSize:], pattern(n)[:64]) {
			t.Fatalf("%s: plaintext left in the blob", c.what)
		}
	}
	// The untouched blobs still open: the cases above fail for what was
	// done to them, not because the test's blobs are bad.
	for _, b := range [][]byte{a, a2} {
		if p, err := v.OpenSession(ctx, "s", append([]byte(nil), b...)); err != nil || !bytes.Equal(p, pattern(n)) {
			t.Fatalf("untouched blob: %v", err)
		}
	}
}

// TestChunkedWipedOnFailure: when a late chunk fails, the chunks before
// it, which decrypted in place, are zeroed with the rest.
func TestChunkedWipedOnFailure(t *testing.T) {
	v, _ := newVault(t)
	blob := chunked(t, v, "s", MaxPlaintextSize)
	blob[len(blob)-1] ^= 0x80
	if _, err := v.OpenSession(context.Background(), "s", blob); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
	if body := blob[envelopeV3HeaderSize:]; !bytes.Equal(body, make([]byte, len(body))) {
		t.Fatal("the blob was not zeroed after a failed open")
	}
}

// TestChunkedHostileSizes: sizes are checked before any chunk is opened.
func TestChunkedHostileSizes(t *testing.T) {
	v, _ := newVault(t)
	ctx := context.Background()
	hdr := chunked(t, v, "s", chunkedThreshold+1)[:envelopeV3HeaderSize]
	over := join(hdr, make([]byte, MaxSealedSize+1-envelopeV3HeaderSize))
	_, err := v.OpenSession(ctx, "s", over)
	wantErr(t, err, ErrTooLarge, "version 3 over MaxSealedSize")
	// A version 2 envelope keeps its own, smaller cap.
	v2 := join(hdr, make([]byte, maxSealedV2Size+1-envelopeV3HeaderSize))
	binary.BigEndian.PutUint16(v2[magicSize:], envelopeVersion)
	_, err = v.OpenSession(ctx, "s", v2)
	wantErr(t, err, ErrTooLarge, "version 2 over its cap")
	for _, body := range []int{0, 1, tagSize, chunkSize + tagSize + tagSize, 3*(chunkSize+tagSize) + 5} {
		_, err := v.OpenSession(ctx, "s", join(hdr, make([]byte, body)))
		wantErr(t, err, ErrCorrupt, "a body of a partial chunk")
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Field != "size" {
			t.Fatalf("body %d: %v, want a size error", body, err)
		}
	}
	if _, _, ok := chunkLayout(chunkSize + tagSize); !ok {
		t.Fatal("one full chunk refused")
	}
	if n, p, ok := chunkLayout(2*(chunkSize+tagSize) + tagSize + 1); !ok || n != 3 || p != 2*chunkSize+1 {
		t.Fatalf("layout %d %d %v", n, p, ok)
	}
}

// TestChunkedRollback: the counter of a version 3 envelope is a rollback
// counter like that of version 2.
func TestChunkedRollback(t *testing.T) {
	v, b := newVault(t)
	ctx := context.Background()
	big := pattern(chunkedThreshold + 1)
	if _, err := v.Store("s").Seal(ctx, big, backends.Any); err != nil {
		t.Fatal(err)
	}
	old, ver, err := b.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Store("s").Seal(ctx, big, ver); err != nil {
		t.Fatal(err)
	}
	if _, err := v.OpenSession(ctx, "s", append([]byte(nil), old...)); !errors.Is(err, ErrRollback) {
		t.Fatalf("older version 3 blob: %v, want ErrRollback", err)
	}
	env, err := parseEnvelope("s", old)
	if err != nil || env.counter == 0 {
		t.Fatalf("counter %d, %v", env.counter, err)
	}
}

// TestRetiredChunked: after RotateKey, no chunked session the file
// backend keeps (current blob, previous generation) opens with the
// dropped data key; on a backend whose DropPrevious does nothing, the
// independent scanner (internal/retired) finds the chunked copy sealed
// under it, so the scan can see version 3 envelopes.
func TestRetiredChunked(t *testing.T) {
	for _, broken := range []bool{false, true} {
		ctx := context.Background()
		fb, err := file.New(t.TempDir() + "/vault")
		if err != nil {
			t.Fatal(err)
		}
		defer fb.Close()
		var b backends.Backend = fb
		if broken {
			b = unpurged{fb}
		}
		v, err := Create(ctx, b, cheap("passphrase")...)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		for round := range 2 {
			if _, err := v.Store("big").Seal(ctx, pattern(chunkedThreshold+1+round), backends.Any); err != nil {
				t.Fatal(err)
			}
		}
		v.mu.RLock()
		dk := bytes.Clone(v.current().key.Bytes())
		v.mu.RUnlock()
		if err := v.RotateKey(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got := open(t, v, "big"); got != string(pattern(chunkedThreshold+2)) {
			t.Fatal("the rotated chunked session differs")
		}
		rep, err := retired.New(retired.Credentials{DroppedKeys: [][]byte{dk}}).ScanDir(fb.Path())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Envelopes == 0 {
			t.Fatal("no envelope scanned")
		}
		if broken != (len(rep.Findings) > 0) {
			t.Fatalf("DropPrevious skipped %v: findings %v", broken, rep.Findings)
		}
	}
}

// TestLibsodiumOpensEnvelopeV3 runs testdata/kat/libsodium_v3.py: an
// implementation of section 4.4 on libsodium's XChaCha20-Poly1305 that
// reproduces the section 9.4 vectors and opens the blob chunk by chunk.
// It is skipped where python3 or libsodium is missing, unless
// SESSIONVAULT_REQUIRE_SERVICES is set (scripts/test installs libsodium).
func TestLibsodiumOpensEnvelopeV3(t *testing.T) {
	skip := t.Skip
	if os.Getenv("SESSIONVAULT_REQUIRE_SERVICES") != "" {
		skip = t.Fatal
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		skip("python3 not found")
	}
	out, err := exec.Command(py, "testdata/kat/libsodium_v3.py").CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 77 {
		skip("libsodium_v3.py: " + string(bytes.TrimSpace(out)))
	}
	if err != nil || string(bytes.TrimSpace(out)) != "ok" {
		t.Fatalf("libsodium_v3.py: %v\n%s", err, out)
	}
}

// TestChunkedConcurrent: several goroutines seal and open chunked
// sessions of one Vault at once (each call with its own workers); run
// with -race it checks that the workers share nothing writable.
func TestChunkedConcurrent(t *testing.T) {
	v, _ := newVault(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			name := "s" + itoa(g)
			want := pattern(chunkedThreshold + 1000*g + 1)
			for range 3 {
				blob, err := v.SealSession(name, want)
				if err != nil {
					errs <- err
					return
				}
				got, err := v.OpenSession(ctx, name, blob)
				if err == nil && !bytes.Equal(got, want) {
					err = errors.New("plaintext differs")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// chunkLayout refuses every body length outside one to maxChunks chunks,
// whatever the caller checked, up to lengths near the int limit.
func TestChunkLayoutBounds(t *testing.T) {
	full := chunkSize + tagSize
	for _, c := range []struct {
		body   int
		chunks int
		ok     bool
	}{
		{tagSize, 0, false},
		{tagSize + 1, 1, true},
		{full, 1, true},
		{full + tagSize, 0, false},
		{full + tagSize + 1, 2, true},
		{maxChunks * full, maxChunks, true},
		{maxChunks*full + tagSize + 1, 0, false},
		{1<<31 - 1, 0, false},
		{int(^uint(0) >> 1), 0, false},
	} {
		n, plain, ok := chunkLayout(c.body)
		if ok != c.ok || n != c.chunks || (ok && plain != c.body-n*tagSize) {
			t.Errorf("chunkLayout(%d) = %d, %d, %v; want %d chunks, ok %v", c.body, n, plain, ok, c.chunks, c.ok)
		}
	}
}
