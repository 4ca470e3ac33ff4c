package tamper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

const (
	sessionName = "bot"
	passphrase  = "tamper-harness-passphrase"
)

// testKDF is cheap; testPolicy accepts it, and its ceiling is low so that a
// flipped parameter bit that stays within the ceiling costs a test
// milliseconds, not a 512 MiB derivation. (The default ceiling is checked
// separately, by TestHostileHeaders.)
var (
	testKDF    = kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}
	testPolicy = kdf.InsecurePolicyForTesting.WithCeiling(kdf.Params{Time: 4, MemoryKiB: 2048, Threads: 4})
)

func opts(policy kdf.Policy) []vault.Option {
	return []vault.Option{vault.WithPassphrase([]byte(passphrase)), vault.WithKDFParams(testKDF), vault.WithKDFPolicy(policy)}
}

// sentinels are the typed outcomes a hostile input may have.
var sentinels = []struct {
	name string
	err  error
}{
	{"corrupt", vault.ErrCorrupt},
	{"wrong_key", vault.ErrWrongKey},
	{"unsupported_version", vault.ErrUnsupportedVersion},
	{"policy", vault.ErrPolicy},
	{"too_large", vault.ErrTooLarge},
	{"not_found", vault.ErrNotFound},
	{"backend_too_large", backends.ErrTooLarge},
}

// classify names the category of err, or "untyped".
func classify(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "untyped"
}

// sessionFile is the session the harness seals: the full axiomtrade-rs
// session (1.2 KB sealed, 11k mutations) in the long run, a tokens-only
// session file of the same library (about 300 bytes sealed) by default, so
// that CI under the race detector stays fast.
func sessionFile() string {
	if figures.Long() {
		return "session-after-login.json"
	}
	return "tokens-only.json"
}

// realVault makes a real file-backed vault holding a session from
// testdata under sessionName, and returns its folder and the plaintext
// stored.
func realVault(t testing.TB, policy kdf.Policy) (dir string, plain []byte) {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("testdata", sessionFile()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.ParseSession(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	plain, err = s.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, opts(policy)...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Store(sessionName).Seal(ctx, plain, backends.Absent); err != nil {
		t.Fatal(err)
	}
	return dir, plain
}

func headerPath(dir string) string { return filepath.Join(dir, "vault.hdr") }

// blobAt returns the blob stored in the vault file at path (vault.hdr or
// sessions/NAME.sealed), read through the file backend: a file of layout
// 2 is a record that holds the blob in one of its two slots. The harness
// mutates that blob and writes it back as the bare file of layout 1,
// which the backend reads as that blob, so that every mutation reaches
// the vault's readers.
func blobAt(t testing.TB, path string) []byte {
	t.Helper()
	dir, name := filepath.Dir(path), backends.HeaderName
	if filepath.Base(path) != "vault.hdr" {
		dir, name = filepath.Dir(dir), strings.TrimSuffix(filepath.Base(path), ".sealed")
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	blob, _, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

func sessionPath(dir, name string) string { return filepath.Join(dir, "sessions", name+".sealed") }

// writeFile replaces a vault file's content in place, keeping its mode.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// outcome tallies the results of hostile inputs.
type outcome struct {
	f        *figures.Set
	examples map[string]string
	// selfTest makes a refusal failure a log line, not a test failure:
	// the self-test runs the harness on readers that are broken on purpose.
	selfTest bool
}

func newOutcome(name string) *outcome {
	f := figures.New(name)
	f.Declare("inputs", "accepted", "panics", "untyped")
	return &outcome{f: f, examples: map[string]string{}}
}

// record counts one input's result: err from the reader, whether the
// original plaintext came out (accepted), and a recovered panic.
func (o *outcome) record(t *testing.T, what string, err error, accepted bool, p *figures.Panic) {
	t.Helper()
	fail := t.Errorf
	if o.selfTest {
		fail = func(string, ...any) {}
	}
	o.f.Inc("inputs")
	switch {
	case p != nil:
		o.f.Inc("panics")
		fail("%s: panic: %v", what, p)
	case accepted || err == nil:
		o.f.Inc("accepted")
		fail("%s: accepted", what)
	default:
		c := classify(err)
		o.f.Inc("err_" + c)
		if c == "untyped" {
			o.f.Inc("untyped")
			fail("%s: untyped error: %v", what, err)
		}
		if _, ok := o.examples[c]; !ok {
			o.examples[c] = what + ": " + err.Error()
		}
	}
}

func (o *outcome) report(t *testing.T) {
	t.Helper()
	keys := make([]string, 0, len(o.examples))
	for k := range o.examples {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("e.g. %s", o.examples[k])
	}
	o.f.Report(t)
}

// openAll opens the vault at dir and the session name, as a fresh process
// would. accepted is true only if the session's plaintext came out equal to
// want.
func openAll(ctx context.Context, dir, name string, want []byte, policy kdf.Policy) (accepted bool, err error) {
	b, err := file.New(dir)
	if err != nil {
		return false, err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, opts(policy)...)
	if err != nil {
		return false, err
	}
	defer v.Close()
	got, _, err := v.Store(name).Open(ctx)
	if err != nil {
		return false, err
	}
	return true, fmt.Errorf("opened (%d bytes, equal to the original: %v)", len(got), bytes.Equal(got, want))
}

// fixSum recomputes a header's trailing SHA-256 checksum, as an attacker
// who edits a header would.
func fixSum(h []byte) []byte {
	if len(h) < 32 {
		return h
	}
	sum := sha256.Sum256(h[:len(h)-32])
	copy(h[len(h)-32:], sum[:])
	return h
}

// TestTamperHeader: every single-bit flip, truncation and appended byte of
// a real header, both as is (the checksum catches it) and with the
// checksum recomputed (the MAC, the slot check or the policy must).
func TestTamperHeader(t *testing.T) {
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	orig, err := blobAt(t, headerPath(dir)), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, fixed := range []bool{false, true} {
		name := "tamper/header"
		if fixed {
			name += "-checksum-fixed"
		}
		o := newOutcome(name)
		headerHarness(t, o, orig, fixed, func(h []byte) (bool, error) {
			writeFile(t, headerPath(dir), h)
			return openAll(ctx, dir, sessionName, plain, testPolicy)
		})
		writeFile(t, headerPath(dir), orig)
		o.f.Note("header_bytes", fmt.Sprint(len(orig)))
		o.report(t)
	}
	if ok, err := openAll(ctx, dir, sessionName, plain, testPolicy); !ok {
		t.Fatalf("the restored header does not open: %v", err)
	}
}

// headerHarness feeds every mutation of the header orig (with its
// checksum recomputed when fixed) to open, which reports whether the
// session came out, and tallies in o what it did with each.
func headerHarness(t *testing.T, o *outcome, orig []byte, fixed bool, open func(h []byte) (bool, error)) {
	t.Helper()
	Mutations(orig, func(m Mutation, b []byte) bool {
		if fixed {
			if m.Kind == BitFlip && m.At >= 8*(len(orig)-32) {
				return true // a flip in the checksum itself is undone by fixing it
			}
			b = fixSum(b)
		}
		var accepted bool
		var oerr error
		p := figures.Protect(func() { accepted, oerr = open(b) })
		o.record(t, m.String(), oerr, accepted, p)
		return !t.Failed() || o.f.Get("inputs") < 10000
	})
}

// TestTamperSession: every single-bit flip, truncation and appended byte
// of a real sealed session.
func TestTamperSession(t *testing.T) {
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	orig, err := blobAt(t, sessionPath(dir, sessionName)), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, opts(testPolicy)...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	st := v.Store(sessionName)
	o := newOutcome("tamper/session")
	sessionHarness(t, o, orig, func(mb []byte) ([]byte, error) {
		writeFile(t, sessionPath(dir, sessionName), mb)
		got, _, err := st.Open(ctx)
		return got, err
	})
	writeFile(t, sessionPath(dir, sessionName), orig)
	o.f.Note("session_bytes", fmt.Sprint(len(orig)))
	o.report(t)
	if got, _, err := st.Open(ctx); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("the restored session does not open: %v", err)
	}
}

// sessionHarness feeds every mutation of the sealed session orig to open
// and tallies in o what it did with each.
func sessionHarness(t *testing.T, o *outcome, orig []byte, open func(mb []byte) ([]byte, error)) {
	t.Helper()
	Mutations(orig, func(m Mutation, mb []byte) bool {
		var got []byte
		var oerr error
		p := figures.Protect(func() { got, oerr = open(mb) })
		o.record(t, m.String(), oerr, got != nil, p)
		return true
	})
}

// TestTamperMoves: a session renamed to another session's name, a session
// copied in from another vault (same passphrase), a header copied from
// another vault, an old session put back after a rotation dropped its
// generation, and an old header put back after a rotation.
func TestTamperMoves(t *testing.T) {
	o := newOutcome("tamper/moves")
	movesHarness(t, o, func(ctx context.Context, dir, name string, want []byte) (bool, error) {
		return openAll(ctx, dir, name, want, testPolicy)
	})
	o.report(t)
}

// movesHarness makes two real vaults with the same passphrase, moves
// sessions and headers between names, vaults and generations, and tallies
// in o what open (a fresh open of the vault at dir and its session name;
// true if the session came out) did with each.
func movesHarness(t *testing.T, o *outcome, open func(ctx context.Context, dir, name string, want []byte) (bool, error)) {
	t.Helper()
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	other, _ := realVault(t, testPolicy)
	read := func(p string) []byte { return blobAt(t, p) }
	sealed := read(sessionPath(dir, sessionName))
	hdr := read(headerPath(dir))

	try := func(what string, f func() (bool, error)) {
		var accepted bool
		var err error
		p := figures.Protect(func() { accepted, err = f() })
		o.record(t, what, err, accepted, p)
	}

	// Renamed: the blob of "bot" stored as "alice".
	writeFile(t, sessionPath(dir, "alice"), sealed)
	try("session renamed", func() (bool, error) { return open(ctx, dir, "alice", plain) })
	os.Remove(sessionPath(dir, "alice"))

	// Copied from another vault with the same passphrase.
	writeFile(t, sessionPath(dir, sessionName), read(sessionPath(other, sessionName)))
	try("session from another vault", func() (bool, error) { return open(ctx, dir, sessionName, plain) })
	writeFile(t, sessionPath(dir, sessionName), sealed)

	// Header from another vault (same passphrase): it opens, as it is a
	// valid header, but this vault's sessions must not open under it.
	writeFile(t, headerPath(dir), read(headerPath(other)))
	try("header from another vault", func() (bool, error) { return open(ctx, dir, sessionName, plain) })
	writeFile(t, headerPath(dir), hdr)

	// Rotate: the header drops generation 1 and the session is re-sealed
	// under generation 2.
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, b, opts(testPolicy)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.RotateKey(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if gens := v.Info().Generations; len(gens) != 1 || gens[0] == 1 {
		t.Fatalf("after RotateKey: generations %v", gens)
	}
	v.Close()
	b.Close()
	rotated := read(sessionPath(dir, sessionName))
	if ok, err := openAll(ctx, dir, sessionName, plain, testPolicy); !ok {
		t.Fatalf("rotated vault does not open: %v", err)
	}
	// The old session (generation 1) under the new header.
	writeFile(t, sessionPath(dir, sessionName), sealed)
	try("session of a dropped generation", func() (bool, error) { return open(ctx, dir, sessionName, plain) })
	writeFile(t, sessionPath(dir, sessionName), rotated)
	// The old header (generation 1 only) with the new session.
	newHdr := read(headerPath(dir))
	writeFile(t, headerPath(dir), hdr)
	try("header rolled back past a rotation", func() (bool, error) { return open(ctx, dir, sessionName, plain) })
	writeFile(t, headerPath(dir), newHdr)
	// The old header with its generation list edited to name the new
	// generation (checksum fixed): the MAC must refuse it.
	forged := append([]byte(nil), hdr...)
	binary.BigEndian.PutUint32(forged[27:], 2)
	writeFile(t, headerPath(dir), fixSum(forged))
	try("header with its generation renamed", func() (bool, error) { return open(ctx, dir, sessionName, plain) })
	writeFile(t, headerPath(dir), newHdr)
}

// headerLayout locates the fields of a v1 header (docs/FORMAT.md): it is
// written here from the spec, independently of package vault, so that the
// harness can forge what an attacker would.
type headerLayout struct {
	genCount  int // offset of the generation count
	slotCount int // offset of the slot count
	slot0     int // offset of the first slot (its kind byte)
}

func layout(t *testing.T, h []byte) headerLayout {
	t.Helper()
	const magic, version, id = 8, 2, 16
	l := headerLayout{genCount: magic + version + id}
	ng := int(h[l.genCount])
	l.slotCount = l.genCount + 1 + 4*ng
	l.slot0 = l.slotCount + 1
	if h[l.slot0] != 1 {
		t.Fatalf("first slot is of kind %d, want a passphrase slot", h[l.slot0])
	}
	return l
}

// TestHostileHeaders forges headers (checksum fixed) that claim absurd
// argon2id costs, counts or sizes: each must be refused before any key
// derivation and without allocating in proportion to the claim.
func TestHostileHeaders(t *testing.T) {
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	orig, err := blobAt(t, headerPath(dir)), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	l := layout(t, orig)
	params := l.slot0 + 1 + 16 // kind, slot id
	u32 := func(off int, v uint32) func([]byte) []byte {
		return func(h []byte) []byte { binary.BigEndian.PutUint32(h[off:], v); return h }
	}
	u8 := func(off int, v byte) func([]byte) []byte {
		return func(h []byte) []byte { h[off] = v; return h }
	}
	forges := []forge{
		{"argon2id time 2^32-1", u32(params, 1<<32-1)},
		{"argon2id time 11 (ceiling+1)", u32(params, 11)},
		{"argon2id time 0", u32(params, 0)},
		{"argon2id memory 4 GiB", u32(params+4, 4<<20)},
		{"argon2id memory 2^32-1 KiB", u32(params+4, 1<<32-1)},
		{"argon2id memory 1 GiB + 1 KiB", u32(params+4, 1<<20+1)},
		{"argon2id memory 0", u32(params+4, 0)},
		{"argon2id threads 255", u8(params+8, 255)},
		{"argon2id threads 17", u8(params+8, 17)},
		{"argon2id threads 0", u8(params+8, 0)},
		{"generation count 255", u8(l.genCount, 255)},
		{"generation count 0", u8(l.genCount, 0)},
		{"slot count 255", u8(l.slotCount, 255)},
		{"slot count 0", u8(l.slotCount, 0)},
		{"header of 16 KiB + 1", func(h []byte) []byte { return append(h, make([]byte, 16<<10+1-len(h))...) }},
		{"header of 1 MiB", func(h []byte) []byte { return append(h, make([]byte, 1<<20)...) }},
	}
	o := newOutcome("tamper/hostile-headers")
	// Open with the default policy's ceiling (t=10, 1 GiB, p=16): the
	// forged costs must be refused by the production ceiling.
	hostileHarness(t, o, forges, func(h []byte) (bool, error) {
		writeFile(t, headerPath(dir), h)
		return openAll(ctx, dir, sessionName, plain, kdf.InsecurePolicyForTesting)
	}, orig)
	writeFile(t, headerPath(dir), orig)
	o.report(t)
}

// forge is one hostile edit of a header.
type forge struct {
	name string
	edit func(h []byte) []byte
}

// hostileHarness feeds each forged header (its checksum fixed) to open and
// tallies in o what open did, the key derivations it ran, the memory it
// allocated and the time it took. A derivation, more than 4 MiB
// allocated or more than a second is a failure (a log line in a
// self-test).
func hostileHarness(t *testing.T, o *outcome, forges []forge, open func(h []byte) (bool, error), orig []byte) {
	t.Helper()
	fail := t.Errorf
	if o.selfTest {
		fail = t.Logf
	}
	o.f.Declare("derivations", "max_alloc_kib", "max_micros")
	for _, fg := range forges {
		h := fixSum(fg.edit(append([]byte(nil), orig...)))
		before := kdf.Derivations()
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		var accepted bool
		var oerr error
		p := figures.Protect(func() { accepted, oerr = open(h) })
		elapsed := time.Since(start)
		runtime.ReadMemStats(&ms1)
		derived := kdf.Derivations() - before
		alloc := ms1.TotalAlloc - ms0.TotalAlloc
		o.record(t, fg.name, oerr, accepted, p)
		o.f.Add("derivations", int64(derived))
		o.f.Max("max_alloc_kib", int64(alloc>>10))
		o.f.Max("max_micros", elapsed.Microseconds())
		t.Logf("%-32s %-22s %4d KiB allocated, %v, %d derivations: %v", fg.name, classify(oerr), alloc>>10, elapsed.Round(time.Microsecond), derived, oerr)
		if derived != 0 {
			fail("%s: %d key derivations before the refusal", fg.name, derived)
		}
		// The file backend reads up to its blob cap (1 MiB + 64 KiB) and
		// the header itself is refused above 16 KiB; what must never
		// happen is an allocation in proportion to a forged claim
		// (gigabytes for argon2id memory).
		if alloc > hostileMaxAlloc {
			fail("%s: %d KiB allocated before the refusal", fg.name, alloc>>10)
		}
		if elapsed > time.Second {
			fail("%s: refused only after %v", fg.name, elapsed)
		}
	}
}

// hostileMaxAlloc is the most a refusal of a forged header may allocate.
const hostileMaxAlloc = 4 << 20

// TestOversizedFiles plants sparse files far beyond the caps at the
// header and session paths: refused with a typed error, without reading
// them.
func TestOversizedFiles(t *testing.T) {
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	o := newOutcome("tamper/oversized-files")
	o.f.Declare("max_alloc_kib")
	for _, c := range []struct {
		what, path string
		size       int64
	}{
		{"header of 4 GiB", headerPath(dir), 4 << 30},
		{"session of 4 GiB", sessionPath(dir, sessionName), 4 << 30},
		{"session of cap+1", sessionPath(dir, sessionName), vault.MaxSealedSize + 1},
		{"session of backend cap+1", sessionPath(dir, sessionName), backends.MaxBlobSize + 1},
	} {
		orig := blobAt(t, c.path)
		f, err := os.OpenFile(c.path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(c.size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		var accepted bool
		var oerr error
		p := figures.Protect(func() { accepted, oerr = openAll(ctx, dir, sessionName, plain, testPolicy) })
		runtime.ReadMemStats(&ms1)
		alloc := ms1.TotalAlloc - ms0.TotalAlloc
		o.record(t, c.what, oerr, accepted, p)
		o.f.Max("max_alloc_kib", int64(alloc>>10))
		t.Logf("%s: %s, %d KiB allocated: %v", c.what, classify(oerr), alloc>>10, oerr)
		if alloc > 4<<20 {
			t.Errorf("%s: %d KiB allocated", c.what, alloc>>10)
		}
		if !strings.Contains(classify(oerr), "too_large") {
			t.Errorf("%s: %v, want a too-large error", c.what, oerr)
		}
		writeFile(t, c.path, orig)
	}
	o.report(t)
}
