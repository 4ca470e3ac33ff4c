package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Run runs the conformance suite as subtests of t. newBackend must return
// a fresh, empty backend each time it is called (it is called once per
// subtest) and register its own cleanup with t.Cleanup.
func Run(t *testing.T, newBackend func(t *testing.T) backends.Backend, cfg Config) {
	t.Helper()
	if cfg.MaxBlobSize > backends.MaxBlobSize {
		t.Fatalf("backendtest: Config.MaxBlobSize %d exceeds backends.MaxBlobSize %d", cfg.MaxBlobSize, backends.MaxBlobSize)
	}
	if cfg.MaxNameLen > backends.MaxNameLen {
		t.Fatalf("backendtest: Config.MaxNameLen %d exceeds backends.MaxNameLen %d", cfg.MaxNameLen, backends.MaxNameLen)
	}
	cfg = cfg.withDefaults()
	tests := []struct {
		name string
		fn   func(*testing.T, context.Context, backends.Backend, Config)
	}{
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"HeaderName", testHeaderName},
		{"MaxSize", testMaxSize},
		{"TooLarge", testTooLarge},
		{"Versions", testVersions},
		{"PutAbsent", testPutAbsent},
		{"PutStale", testPutStale},
		{"PutAny", testPutAny},
		{"Delete", testDelete},
		{"DeleteStale", testDeleteStale},
		{"List", testList},
		{"Copies", testCopies},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentReaders", testConcurrentReaders},
		{"ContextCanceled", testContextCanceled},
		{"ContextExpired", testContextExpired},
		{"BadNames", testBadNames},
		{"GoodNames", testGoodNames},
		{"Locker", testLocker},
		{"LockerExclusion", testLockerExclusion},
		{"Recoverer", testRecoverer},
		{"DropPrevious", testDropPrevious},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), cfg.Timeout)
			defer cancel()
			b := newBackend(t)
			if b == nil {
				t.Fatal("newBackend returned nil")
			}
			tt.fn(t, ctx, b, cfg)
		})
	}
}

// --- helpers ---

func mustPut(t *testing.T, ctx context.Context, b backends.Backend, name string, blob []byte, ifv backends.Version) backends.Version {
	t.Helper()
	v, err := b.Put(ctx, name, blob, ifv)
	if err != nil {
		t.Fatalf("Put(%q, %d bytes, %q): %v", name, len(blob), ifv, err)
	}
	if v == backends.Absent || v == backends.Any {
		t.Fatalf("Put(%q) returned the reserved version %q", name, v)
	}
	return v
}

func mustGet(t *testing.T, ctx context.Context, b backends.Backend, name string) ([]byte, backends.Version) {
	t.Helper()
	blob, v, err := b.Get(ctx, name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if v == backends.Absent || v == backends.Any {
		t.Fatalf("Get(%q) returned the reserved version %q", name, v)
	}
	return blob, v
}

// wantBlob checks that name holds exactly want at version wantV (unless
// wantV is Any).
func wantBlob(t *testing.T, ctx context.Context, b backends.Backend, name string, want []byte, wantV backends.Version) {
	t.Helper()
	got, v := mustGet(t, ctx, b, name)
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %s, want %s", name, describe(got), describe(want))
	}
	if wantV != backends.Any && v != wantV {
		t.Fatalf("Get(%q) version = %q, want %q", name, v, wantV)
	}
}

func wantNotFound(t *testing.T, ctx context.Context, b backends.Backend, name string) {
	t.Helper()
	blob, v, err := b.Get(ctx, name)
	if !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get(%q) = %s, %q, %v; want an error matching ErrNotFound", name, describe(blob), v, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one matching %v", what, err, target)
	}
}

func list(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) []string {
	t.Helper()
	names, err := b.List(ctx)
	if cfg.NoList {
		wantErr(t, "List on a backend with NoList", err, backends.ErrUnavailable)
		return nil
	}
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return names
}

// describe prints a blob briefly: its length and a short prefix.
func describe(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) <= 16 {
		return fmt.Sprintf("%d bytes %x", len(b), b)
	}
	return fmt.Sprintf("%d bytes %x...", len(b), b[:16])
}

// pattern returns n deterministic bytes that differ with seed and include
// every byte value (NUL among them) when n >= 256.
func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	for i := 0; i < n && i < 256; i++ {
		p[i] = byte(i)
	}
	return p
}

// --- tests ---

func testEmpty(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	if names := list(t, ctx, b, cfg); len(names) != 0 {
		t.Fatalf("List of a new backend = %q, want none (newBackend must return an empty backend)", names)
	}
	wantNotFound(t, ctx, b, "missing")
	wantNotFound(t, ctx, b, backends.HeaderName)
	wantErr(t, "Delete(missing, Any)", b.Delete(ctx, "missing", backends.Any), backends.ErrNotFound)
	if err := b.Delete(ctx, "missing", backends.Version("v1")); !errors.Is(err, backends.ErrNotFound) && !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("Delete(missing, v1): %v, want ErrNotFound or ErrConflict", err)
	}
}

func testRoundTrip(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	blobs := map[string][]byte{
		"empty":     {},
		"nul":       {0},
		"nuls":      make([]byte, 64),
		"one":       {'x'},
		"allbytes":  pattern(256, 1),
		"binary":    pattern(min(4096, cfg.MaxBlobSize), 2),
		"trailing0": append([]byte("sealed"), 0, 0, 0),
		"crlf":      []byte("a\r\nb\r\n\x1a"),
	}
	versions := map[string]backends.Version{}
	for name, blob := range blobs {
		if len(blob) > cfg.MaxBlobSize {
			continue
		}
		versions[name] = mustPut(t, ctx, b, name, blob, backends.Absent)
	}
	for name, blob := range blobs {
		if v, ok := versions[name]; ok {
			wantBlob(t, ctx, b, name, blob, v)
		}
	}
	// A nil blob stores an empty blob.
	v := mustPut(t, ctx, b, "nil", nil, backends.Absent)
	got, gv := mustGet(t, ctx, b, "nil")
	if len(got) != 0 || gv != v {
		t.Fatalf("Get(nil blob) = %s, %q; want 0 bytes, %q", describe(got), gv, v)
	}
}

func testHeaderName(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	hdr := pattern(300, 3)
	v := mustPut(t, ctx, b, backends.HeaderName, hdr, backends.Absent)
	s := mustPut(t, ctx, b, "session", []byte("s"), backends.Absent)
	wantBlob(t, ctx, b, backends.HeaderName, hdr, v)
	wantBlob(t, ctx, b, "session", []byte("s"), s)
	if !cfg.NoList {
		if names := list(t, ctx, b, cfg); !slices.Equal(names, []string{"session"}) {
			t.Fatalf("List = %q, want [session] (HeaderName is never listed)", names)
		}
	}
	hdr2 := pattern(310, 4)
	v2 := mustPut(t, ctx, b, backends.HeaderName, hdr2, v)
	wantBlob(t, ctx, b, backends.HeaderName, hdr2, v2)
	if err := b.Delete(ctx, backends.HeaderName, v2); err != nil {
		t.Fatalf("Delete(HeaderName): %v", err)
	}
	wantNotFound(t, ctx, b, backends.HeaderName)
	wantBlob(t, ctx, b, "session", []byte("s"), s)
}

func testMaxSize(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	big := pattern(cfg.MaxBlobSize, 5)
	v := mustPut(t, ctx, b, "max", big, backends.Absent)
	wantBlob(t, ctx, b, "max", big, v)
	big2 := pattern(cfg.MaxBlobSize, 6)
	v2 := mustPut(t, ctx, b, "max", big2, v)
	wantBlob(t, ctx, b, "max", big2, v2)
}

func testTooLarge(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	over := pattern(cfg.MaxBlobSize+1, 7)
	_, err := b.Put(ctx, "big", over, backends.Absent)
	wantErr(t, "Put of MaxBlobSize+1 bytes", err, backends.ErrTooLarge)
	wantNotFound(t, ctx, b, "big")

	// Over the limit on an existing blob changes nothing, whatever the
	// version given.
	old := []byte("old")
	v := mustPut(t, ctx, b, "big", old, backends.Absent)
	for _, ifv := range []backends.Version{v, backends.Any} {
		_, err = b.Put(ctx, "big", over, ifv)
		wantErr(t, fmt.Sprintf("Put of MaxBlobSize+1 bytes over an existing blob (ifVersion %q)", ifv), err, backends.ErrTooLarge)
		wantBlob(t, ctx, b, "big", old, v)
	}
	// Far over the limit too (a backend must not allocate for it first).
	if cfg.MaxBlobSize < 8<<20 {
		huge := make([]byte, 8<<20)
		_, err = b.Put(ctx, "huge", huge, backends.Any)
		wantErr(t, "Put of 8 MiB", err, backends.ErrTooLarge)
		wantNotFound(t, ctx, b, "huge")
	}
}

func testVersions(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	seen := map[backends.Version]int{}
	v := backends.Absent
	for i := range 10 {
		blob := []byte("generation " + strconv.Itoa(i))
		v = mustPut(t, ctx, b, "v", blob, v)
		if j, ok := seen[v]; ok {
			t.Fatalf("Put of generation %d returned version %q, already returned for generation %d", i, v, j)
		}
		seen[v] = i
		wantBlob(t, ctx, b, "v", blob, v)
		// Reading does not change the version.
		wantBlob(t, ctx, b, "v", blob, v)
	}
}

func testPutAbsent(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v := mustPut(t, ctx, b, "a", []byte("first"), backends.Absent)
	_, err := b.Put(ctx, "a", []byte("second"), backends.Absent)
	wantErr(t, "Put(Absent) over an existing blob", err, backends.ErrConflict)
	wantBlob(t, ctx, b, "a", []byte("first"), v)
}

func testPutStale(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v1 := mustPut(t, ctx, b, "s", []byte("one"), backends.Absent)
	v2 := mustPut(t, ctx, b, "s", []byte("two"), v1)
	if v2 == v1 {
		t.Fatalf("Put of new content kept version %q", v1)
	}
	_, err := b.Put(ctx, "s", []byte("three"), v1)
	wantErr(t, "Put with a stale version", err, backends.ErrConflict)
	wantBlob(t, ctx, b, "s", []byte("two"), v2)

	_, err = b.Put(ctx, "s", []byte("three"), backends.Version("no-such-version"))
	wantErr(t, "Put with a made-up version", err, backends.ErrConflict)
	wantBlob(t, ctx, b, "s", []byte("two"), v2)

	// A version on a name that does not exist is a conflict too, not a
	// create.
	_, err = b.Put(ctx, "other", []byte("x"), v2)
	wantErr(t, "Put(missing name, some version)", err, backends.ErrConflict)
	wantNotFound(t, ctx, b, "other")

	// The version of one name is no good for another.
	vo := mustPut(t, ctx, b, "other", []byte("o"), backends.Absent)
	if _, err = b.Put(ctx, "s", []byte("three"), vo); vo != v2 {
		wantErr(t, "Put with another name's version", err, backends.ErrConflict)
		wantBlob(t, ctx, b, "s", []byte("two"), v2)
	}
}

func testPutAny(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v1 := mustPut(t, ctx, b, "any", []byte("one"), backends.Any)
	wantBlob(t, ctx, b, "any", []byte("one"), v1)
	v2 := mustPut(t, ctx, b, "any", []byte("two"), backends.Any)
	if v2 == v1 {
		t.Fatalf("Put(Any) of new content kept version %q", v1)
	}
	wantBlob(t, ctx, b, "any", []byte("two"), v2)
}

func testDelete(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v := mustPut(t, ctx, b, "d", []byte("x"), backends.Absent)
	keep := mustPut(t, ctx, b, "keep", []byte("k"), backends.Absent)
	if err := b.Delete(ctx, "d", v); err != nil {
		t.Fatalf("Delete(current version): %v", err)
	}
	wantNotFound(t, ctx, b, "d")
	wantErr(t, "second Delete", b.Delete(ctx, "d", backends.Any), backends.ErrNotFound)
	wantBlob(t, ctx, b, "keep", []byte("k"), keep)

	// After a Delete the name can be created again, and the old version
	// is no good for it.
	v2 := mustPut(t, ctx, b, "d", []byte("y"), backends.Absent)
	if v2 != v {
		_, err := b.Put(ctx, "d", []byte("z"), v)
		wantErr(t, "Put with the version from before a Delete", err, backends.ErrConflict)
	}
	if err := b.Delete(ctx, "d", backends.Any); err != nil {
		t.Fatalf("Delete(Any): %v", err)
	}
	wantNotFound(t, ctx, b, "d")
}

func testDeleteStale(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v1 := mustPut(t, ctx, b, "d", []byte("one"), backends.Absent)
	v2 := mustPut(t, ctx, b, "d", []byte("two"), v1)
	wantErr(t, "Delete with a stale version", b.Delete(ctx, "d", v1), backends.ErrConflict)
	wantBlob(t, ctx, b, "d", []byte("two"), v2)
	// The zero Version (Absent) never deletes an existing blob: a
	// forgotten version fails safe.
	wantErr(t, "Delete(Absent) of an existing blob", b.Delete(ctx, "d", backends.Absent), backends.ErrConflict)
	wantBlob(t, ctx, b, "d", []byte("two"), v2)
}

func testList(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	if cfg.NoList {
		list(t, ctx, b, cfg)
		return
	}
	names := []string{"zeta", "alpha", "Beta", "a.b", "a-b", "a_b", "a@b", "a+b", "m1", "m10", "m2"}
	for i, n := range rand.Perm(len(names)) {
		mustPut(t, ctx, b, names[n], []byte{byte(i)}, backends.Absent)
	}
	mustPut(t, ctx, b, backends.HeaderName, []byte("hdr"), backends.Absent)
	want := slices.Clone(names)
	slices.Sort(want)
	got := list(t, ctx, b, cfg)
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q (sorted, no HeaderName)", got, want)
	}
	for _, del := range []string{"alpha", "m10", "zeta"} {
		if err := b.Delete(ctx, del, backends.Any); err != nil {
			t.Fatalf("Delete(%q): %v", del, err)
		}
		want = slices.DeleteFunc(want, func(s string) bool { return s == del })
		if got := list(t, ctx, b, cfg); !slices.Equal(got, want) {
			t.Fatalf("List after Delete(%q) = %q, want %q", del, got, want)
		}
	}
	// A failed Put lists nothing.
	b.Put(ctx, "never", make([]byte, cfg.MaxBlobSize+1), backends.Absent)
	b.Put(ctx, "alpha", []byte("x"), backends.Version("stale"))
	if got := list(t, ctx, b, cfg); !slices.Equal(got, want) {
		t.Fatalf("List after failed Puts = %q, want %q", got, want)
	}
}

func testCopies(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	in := []byte("original")
	v := mustPut(t, ctx, b, "c", in, backends.Absent)
	copy(in, "MUTATED!")
	wantBlob(t, ctx, b, "c", []byte("original"), v)

	got, _ := mustGet(t, ctx, b, "c")
	for i := range got {
		got[i] = 'X'
	}
	got = got[:cap(got)] // nor writing into its spare capacity
	for i := range got {
		got[i] = 'Y'
	}
	wantBlob(t, ctx, b, "c", []byte("original"), v)

	a, _ := mustGet(t, ctx, b, "c")
	c, _ := mustGet(t, ctx, b, "c")
	a[0] = 'Z'
	if c[0] != 'o' {
		t.Fatal("two Gets returned the same backing array")
	}
}

// testConcurrentIncrements has Writers goroutines each make Increments
// compare-and-set increments of one counter: a lost update shows as a
// final count below Writers*Increments.
func testConcurrentIncrements(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	const name = "counter"
	mustPut(t, ctx, b, name, []byte("0"), backends.Absent)
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Writers)
	for w := range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < cfg.Increments; {
				blob, v, err := b.Get(ctx, name)
				if err != nil {
					errc <- fmt.Errorf("writer %d: Get: %w", w, err)
					return
				}
				n, err := strconv.Atoi(string(blob))
				if err != nil {
					errc <- fmt.Errorf("writer %d: counter holds %s: a torn or mixed write", w, describe(blob))
					return
				}
				_, err = b.Put(ctx, name, []byte(strconv.Itoa(n+1)), v)
				switch {
				case err == nil:
					done++
				case errors.Is(err, backends.ErrConflict):
					conflicts.Add(1)
				default:
					errc <- fmt.Errorf("writer %d: Put: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	want := cfg.Writers * cfg.Increments
	got, _ := mustGet(t, ctx, b, name)
	if string(got) != strconv.Itoa(want) {
		t.Fatalf("counter = %s after %d writers x %d increments, want %d (lost updates)", got, cfg.Writers, cfg.Increments, want)
	}
	t.Logf("%d increments, %d conflicts retried", want, conflicts.Load())
}

// testConcurrentCreate has Writers goroutines Put(Absent) the same name:
// exactly one wins.
func testConcurrentCreate(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	var wins atomic.Int64
	var winner atomic.Value
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Writers)
	start := make(chan struct{})
	for w := range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			blob := []byte("writer " + strconv.Itoa(w))
			_, err := b.Put(ctx, "race", blob, backends.Absent)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(blob)
			case errors.Is(err, backends.ErrConflict):
			default:
				errc <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("Put(Absent): %v", err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d of %d concurrent Put(Absent) succeeded, want exactly 1", wins.Load(), cfg.Writers)
	}
	wantBlob(t, ctx, b, "race", winner.Load().([]byte), backends.Any)
}

// testConcurrentReaders reads while a writer replaces the blob with
// blobs of different sizes: every read is one whole blob, never a mix.
func testConcurrentReaders(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	// Blob i is size(i%26) copies of the letter 'a'+i%26, so a reader
	// can tell from any blob whether it is whole.
	size := func(k int) int { return (k%4 + 1) * min(cfg.MaxBlobSize, 64<<10) / 4 }
	blob := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, size(i%26)) }
	v := mustPut(t, ctx, b, "r", blob(0), backends.Absent)
	writes := max(cfg.Increments, 10)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _, err := b.Get(ctx, "r")
				if err != nil {
					errc <- fmt.Errorf("reading during writes: Get: %w", err)
					return
				}
				if len(got) == 0 || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) || len(got) != size(int(got[0]-'a')) {
					errc <- fmt.Errorf("reading during writes: Get returned a torn blob: %s", describe(got))
					return
				}
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		var err error
		if v, err = b.Put(ctx, "r", blob(i), v); err != nil {
			t.Errorf("Put: %v", err)
			break
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// methods returns one closure per name-taking method of b, including the
// optional interfaces it implements.
func methods(b backends.Backend) map[string]func(ctx context.Context, name string) error {
	m := map[string]func(ctx context.Context, name string) error{
		"Get": func(ctx context.Context, name string) error {
			_, _, err := b.Get(ctx, name)
			return err
		},
		"Put(Absent)": func(ctx context.Context, name string) error {
			_, err := b.Put(ctx, name, []byte("x"), backends.Absent)
			return err
		},
		"Put(Any)": func(ctx context.Context, name string) error {
			_, err := b.Put(ctx, name, []byte("x"), backends.Any)
			return err
		},
		"Delete": func(ctx context.Context, name string) error {
			return b.Delete(ctx, name, backends.Any)
		},
	}
	if l, ok := b.(backends.Locker); ok {
		m["Lock"] = func(ctx context.Context, name string) error {
			lk, err := l.Lock(ctx, name)
			if err == nil {
				lk.Unlock(context.Background())
			}
			return err
		}
	}
	if r, ok := b.(backends.Recoverer); ok {
		m["Previous"] = func(ctx context.Context, name string) error {
			_, _, err := r.Previous(ctx, name)
			return err
		}
		m["Restore"] = func(ctx context.Context, name string) error {
			_, err := r.Restore(ctx, name, backends.Any)
			return err
		}
		m["DropPrevious"] = func(ctx context.Context, name string) error {
			return r.DropPrevious(ctx, name)
		}
	}
	return m
}

func testContextCanceled(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v := mustPut(t, ctx, b, "exists", []byte("keep"), backends.Absent)
	mustPut(t, ctx, b, "exists", []byte("keep2"), v) // a previous generation for Restore
	v = mustPut(t, ctx, b, "exists", []byte("keep"), backends.Any)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for what, call := range methods(b) {
		for _, name := range []string{"exists", "new"} {
			wantErr(t, fmt.Sprintf("%s(%q) with a cancelled context", what, name), call(cctx, name), context.Canceled)
		}
	}
	_, err := b.List(cctx)
	wantErr(t, "List with a cancelled context", err, context.Canceled)
	wantBlob(t, ctx, b, "exists", []byte("keep"), v)
	wantNotFound(t, ctx, b, "new")
}

func testContextExpired(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	v := mustPut(t, ctx, b, "exists", []byte("keep"), backends.Absent)
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	for what, call := range methods(b) {
		wantErr(t, what+" with an expired deadline", call(dctx, "exists"), context.DeadlineExceeded)
	}
	_, err := b.List(dctx)
	wantErr(t, "List with an expired deadline", err, context.DeadlineExceeded)
	wantBlob(t, ctx, b, "exists", []byte("keep"), v)
}

func testBadNames(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	bad := BadNames()
	if cfg.MaxNameLen < backends.MaxNameLen {
		bad = append(bad, strings.Repeat("b", cfg.MaxNameLen+1))
	}
	calls := methods(b)
	for _, name := range bad {
		for what, call := range calls {
			err := call(ctx, name)
			if !errors.Is(err, backends.ErrInvalidName) {
				t.Errorf("%s(%q): %v, want an error matching ErrInvalidName", what, name, err)
			}
			if err != nil && len(err.Error()) > 4*backends.MaxNameLen+200 {
				t.Errorf("%s(%q...): error message is %d bytes long: quote names briefly", what, name[:16], len(err.Error()))
			}
			if err != nil && strings.ContainsAny(err.Error(), "\x00\n\r\x1b\x7f") {
				t.Errorf("%s(%q): error message %q carries a raw control character from the name", what, name, err.Error())
			}
		}
	}
	if !cfg.NoList {
		if names := list(t, ctx, b, cfg); len(names) != 0 {
			t.Fatalf("List after bad names = %q, want none", names)
		}
	}
	wantNotFound(t, ctx, b, backends.HeaderName)
}

func testGoodNames(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	good := GoodNames(cfg.MaxNameLen)
	for i, name := range good {
		if err := backends.ValidateName(name); err != nil {
			t.Fatalf("backendtest.GoodNames disagrees with ValidateName: %v", err)
		}
		v := mustPut(t, ctx, b, name, []byte{byte(i)}, backends.Absent)
		wantBlob(t, ctx, b, name, []byte{byte(i)}, v)
	}
	if !cfg.NoList {
		want := slices.Clone(good)
		slices.Sort(want)
		if got := list(t, ctx, b, cfg); !slices.Equal(got, want) {
			t.Fatalf("List = %q, want %q", got, want)
		}
	}
	for _, name := range good {
		if err := b.Delete(ctx, name, backends.Any); err != nil {
			t.Fatalf("Delete(%q): %v", name, err)
		}
	}
}

func testLocker(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	l, ok := b.(backends.Locker)
	if !ok {
		t.Skip("backend does not implement backends.Locker")
	}
	lk, err := l.Lock(ctx, "L")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	// A second Lock of the same name waits, and gives up with ctx.
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	lk2, err := l.Lock(sctx, "L")
	cancel()
	if err == nil {
		lk2.Unlock(ctx)
		t.Fatal("second Lock of a held lock succeeded")
	}
	wantErr(t, "Lock of a held lock until the deadline", err, context.DeadlineExceeded)

	// Other names, the header's included, are independent.
	for _, other := range []string{"M", backends.HeaderName} {
		lo, err := l.Lock(ctx, other)
		if err != nil {
			t.Fatalf("Lock(%q) while %q is held: %v", other, "L", err)
		}
		if err := lo.Unlock(ctx); err != nil {
			t.Fatalf("Unlock(%q): %v", other, err)
		}
	}

	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		lk3, err := l.Lock(ctx, "L")
		if err == nil {
			err = lk3.Unlock(ctx)
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := lk.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiting Lock after Unlock: %v", err)
	}
	// A second Unlock is a no-op and does not release someone else's lock.
	lk4, err := l.Lock(ctx, "L")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := lk.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock: %v, want nil (a no-op)", err)
	}
	sctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	if lk5, err := l.Lock(sctx, "L"); err == nil {
		lk5.Unlock(ctx)
		t.Fatal("a second Unlock of an old lock released the current holder's lock")
	}
	cancel()
	lk4.Unlock(ctx)
}

func testLockerExclusion(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	l, ok := b.(backends.Locker)
	if !ok {
		t.Skip("backend does not implement backends.Locker")
	}
	var inside atomic.Int32
	counter := 0 // guarded by the backend's lock only
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Writers)
	for range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range cfg.Increments {
				lk, err := l.Lock(ctx, "X")
				if err != nil {
					errc <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errc <- fmt.Errorf("%d holders inside the lock at once", n)
				}
				c := counter
				time.Sleep(time.Microsecond)
				counter = c + 1
				inside.Add(-1)
				if err := lk.Unlock(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if want := cfg.Writers * cfg.Increments; counter != want {
		t.Fatalf("counter = %d, want %d", counter, want)
	}
}

func testRecoverer(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	r, ok := b.(backends.Recoverer)
	if !ok {
		t.Skip("backend does not implement backends.Recoverer")
	}
	_, _, err := r.Previous(ctx, "p")
	wantErr(t, "Previous of a missing name", err, backends.ErrNotFound)
	_, err = r.Restore(ctx, "p", backends.Any)
	wantErr(t, "Restore of a missing name", err, backends.ErrNotFound)

	one, two, three := pattern(100, 11), pattern(200, 12), pattern(300, 13)
	v1 := mustPut(t, ctx, b, "p", one, backends.Absent)
	_, _, err = r.Previous(ctx, "p")
	wantErr(t, "Previous after one write", err, backends.ErrNotFound)
	_, err = r.Restore(ctx, "p", backends.Any)
	wantErr(t, "Restore after one write", err, backends.ErrNotFound)
	wantBlob(t, ctx, b, "p", one, v1)

	v2 := mustPut(t, ctx, b, "p", two, v1)
	prev, pv, err := r.Previous(ctx, "p")
	if err != nil {
		t.Fatalf("Previous: %v", err)
	}
	if !bytes.Equal(prev, one) || pv != v1 {
		t.Fatalf("Previous = %s, %q; want %s, %q", describe(prev), pv, describe(one), v1)
	}
	prev[0] ^= 0xff // Previous returns a copy
	v3 := mustPut(t, ctx, b, "p", three, v2)
	prev, pv, err = r.Previous(ctx, "p")
	if err != nil || !bytes.Equal(prev, two) || pv != v2 {
		t.Fatalf("Previous after a third write = %s, %q, %v; want %s, %q", describe(prev), pv, err, describe(two), v2)
	}

	// Restore with a stale version changes nothing.
	_, err = r.Restore(ctx, "p", v2)
	wantErr(t, "Restore with a stale version", err, backends.ErrConflict)
	wantBlob(t, ctx, b, "p", three, v3)

	// Restore brings back two; three becomes the previous generation.
	v4, err := r.Restore(ctx, "p", v3)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	wantBlob(t, ctx, b, "p", two, v4)
	prev, _, err = r.Previous(ctx, "p")
	if err != nil || !bytes.Equal(prev, three) {
		t.Fatalf("Previous after Restore = %s, %v; want %s (the replaced blob)", describe(prev), err, describe(three))
	}
	_, err = b.Put(ctx, "p", []byte("x"), v3)
	if v4 != v3 {
		wantErr(t, "Put with the version from before Restore", err, backends.ErrConflict)
	}

	// The header has generations too.
	h1 := mustPut(t, ctx, b, backends.HeaderName, one, backends.Absent)
	mustPut(t, ctx, b, backends.HeaderName, two, h1)
	prev, _, err = r.Previous(ctx, backends.HeaderName)
	if err != nil || !bytes.Equal(prev, one) {
		t.Fatalf("Previous(HeaderName) = %s, %v; want %s", describe(prev), err, describe(one))
	}

	// Delete removes both generations.
	if err := b.Delete(ctx, "p", backends.Any); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err = r.Previous(ctx, "p")
	wantErr(t, "Previous after Delete", err, backends.ErrNotFound)
	_, err = r.Restore(ctx, "p", backends.Any)
	wantErr(t, "Restore after Delete", err, backends.ErrNotFound)
	wantNotFound(t, ctx, b, "p")
	// A name created again starts without a previous generation.
	mustPut(t, ctx, b, "p", one, backends.Absent)
	_, _, err = r.Previous(ctx, "p")
	wantErr(t, "Previous of a name created again after Delete", err, backends.ErrNotFound)
}

// testDropPrevious checks DropPrevious: it removes the previous
// generation and nothing else, is idempotent, is nil for a missing name
// and for a name without a previous generation, and leaves the name
// writable (the next Put makes a previous generation again).
func testDropPrevious(t *testing.T, ctx context.Context, b backends.Backend, cfg Config) {
	r, ok := b.(backends.Recoverer)
	if !ok {
		t.Skip("backend does not implement backends.Recoverer")
	}
	if err := r.DropPrevious(ctx, "d"); err != nil {
		t.Fatalf("DropPrevious of a missing name = %v, want nil", err)
	}
	wantNotFound(t, ctx, b, "d")
	one, two, three := pattern(100, 21), pattern(200, 22), pattern(300, 23)
	v1 := mustPut(t, ctx, b, "d", one, backends.Absent)
	if err := r.DropPrevious(ctx, "d"); err != nil {
		t.Fatalf("DropPrevious of a name written once = %v, want nil", err)
	}
	wantBlob(t, ctx, b, "d", one, v1)
	v2 := mustPut(t, ctx, b, "d", two, v1)
	// A neighbour whose name starts the same way keeps its generations.
	n1 := mustPut(t, ctx, b, "d.sealed", one, backends.Absent)
	mustPut(t, ctx, b, "d.sealed", three, n1)
	for i := range 2 { // idempotent
		if err := r.DropPrevious(ctx, "d"); err != nil {
			t.Fatalf("DropPrevious #%d: %v", i+1, err)
		}
		_, _, err := r.Previous(ctx, "d")
		wantErr(t, "Previous after DropPrevious", err, backends.ErrNotFound)
		_, err = r.Restore(ctx, "d", backends.Any)
		wantErr(t, "Restore after DropPrevious", err, backends.ErrNotFound)
		wantBlob(t, ctx, b, "d", two, v2) // the current blob and its version are untouched
	}
	if prev, _, err := r.Previous(ctx, "d.sealed"); err != nil || !bytes.Equal(prev, one) {
		t.Fatalf("Previous of another name after DropPrevious(d) = %s, %v; want %s", describe(prev), err, describe(one))
	}
	// The header too.
	h1 := mustPut(t, ctx, b, backends.HeaderName, one, backends.Absent)
	h2 := mustPut(t, ctx, b, backends.HeaderName, two, h1)
	if err := r.DropPrevious(ctx, backends.HeaderName); err != nil {
		t.Fatalf("DropPrevious(HeaderName): %v", err)
	}
	_, _, err := r.Previous(ctx, backends.HeaderName)
	wantErr(t, "Previous(HeaderName) after DropPrevious", err, backends.ErrNotFound)
	wantBlob(t, ctx, b, backends.HeaderName, two, h2)
	// A compare-and-set on the current version still works, and makes a
	// previous generation again.
	v3 := mustPut(t, ctx, b, "d", three, v2)
	if prev, _, err := r.Previous(ctx, "d"); err != nil || !bytes.Equal(prev, two) {
		t.Fatalf("Previous after a Put that follows DropPrevious = %s, %v; want %s", describe(prev), err, describe(two))
	}
	wantBlob(t, ctx, b, "d", three, v3)
	if got := list(t, ctx, b, cfg); !cfg.NoList && !slices.Equal(got, []string{"d", "d.sealed"}) {
		t.Fatalf("List = %q, want [d d.sealed]", got)
	}
}
