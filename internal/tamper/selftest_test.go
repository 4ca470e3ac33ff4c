package tamper

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// TestTamperHarnessCatchesBrokenReaders runs the session harness on
// readers broken on purpose, each wrapping the real one, and checks that
// it counts what each does wrong: a reader that ignores trailing bytes
// (appended bytes accepted), one whose errors are bare strings (untyped),
// and one that panics on a short input (panics).
func TestTamperHarnessCatchesBrokenReaders(t *testing.T) {
	ctx := context.Background()
	dir, _ := realVault(t, testPolicy)
	orig, err := os.ReadFile(sessionPath(dir, sessionName))
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
	open := func(mb []byte) ([]byte, error) {
		writeFile(t, sessionPath(dir, sessionName), mb)
		got, _, err := st.Open(ctx)
		return got, err
	}
	defer writeFile(t, sessionPath(dir, sessionName), orig)

	for _, c := range []struct {
		name, figure string
		open         func(mb []byte) ([]byte, error)
	}{
		{"ignores trailing bytes", "accepted", func(mb []byte) ([]byte, error) {
			if len(mb) > len(orig) && bytes.Equal(mb[:len(orig)], orig) {
				mb = mb[:len(orig)]
			}
			return open(mb)
		}},
		{"returns untyped errors", "untyped", func(mb []byte) ([]byte, error) {
			got, err := open(mb)
			if err != nil {
				return nil, errors.New("cannot open the session")
			}
			return got, nil
		}},
		{"panics on short input", "panics", func(mb []byte) ([]byte, error) {
			if len(mb) < len(orig) {
				_ = mb[len(orig)-1]
			}
			return open(mb)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOutcome("tamper/selftest")
			o.selfTest = true
			sessionHarness(t, o, orig, c.open)
			if o.f.Get(c.figure) == 0 {
				t.Fatalf("the harness did not count a reader that %s: %s", c.name, o.f)
			}
			t.Logf("a reader that %s: %s", c.name, o.f)
		})
	}
}

// brokenOpeners wraps a real open of a blob (a header or a session: true
// if the session came out) into the readers the self-tests break on
// purpose, each with the figure the harness must count: one that ignores
// bytes appended to orig (accepted), one whose errors are bare strings
// (untyped), and one that panics on an input shorter than orig (panics).
func brokenOpeners(orig []byte, open func(b []byte) (bool, error)) []struct {
	name, figure string
	open         func(b []byte) (bool, error)
} {
	return []struct {
		name, figure string
		open         func(b []byte) (bool, error)
	}{
		{"ignores trailing bytes", "accepted", func(b []byte) (bool, error) {
			if len(b) > len(orig) && bytes.Equal(b[:len(orig)], orig) {
				b = b[:len(orig)]
			}
			return open(b)
		}},
		{"returns untyped errors", "untyped", func(b []byte) (bool, error) {
			ok, err := open(b)
			if !ok && err != nil {
				return false, errors.New("cannot open the vault")
			}
			return ok, err
		}},
		{"panics on short input", "panics", func(b []byte) (bool, error) {
			if len(b) < len(orig) {
				_ = b[len(orig)-1]
			}
			return open(b)
		}},
	}
}

// TestTamperHeaderHarnessCatchesBrokenReaders runs the header harness
// (TestTamperHeader's) on vault readers broken on purpose, each wrapping
// the real one, and checks that it counts what each does wrong.
func TestTamperHeaderHarnessCatchesBrokenReaders(t *testing.T) {
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	orig := blobAt(t, headerPath(dir))
	defer writeFile(t, headerPath(dir), orig)
	open := func(h []byte) (bool, error) {
		writeFile(t, headerPath(dir), h)
		return openAll(ctx, dir, sessionName, plain, testPolicy)
	}
	sum := figures.New("tamper/header-selftest")
	sum.Declare("accepted", "untyped", "panics")
	defer sum.Report(t)
	for _, c := range brokenOpeners(orig, open) {
		t.Run(c.name, func(t *testing.T) {
			o := newOutcome("tamper/header-selftest")
			o.selfTest = true
			headerHarness(t, o, orig, false, c.open)
			sum.Add(c.figure, o.f.Get(c.figure))
			if o.f.Get(c.figure) == 0 {
				t.Fatalf("the header harness did not count a reader that %s: %s", c.name, o.f)
			}
			t.Logf("a reader that %s: %s", c.name, o.f)
		})
	}
}

// TestTamperMovesHarnessCatchesCachingReader runs the moves harness
// (TestTamperMoves's) on a reader broken on purpose: it keeps the
// plaintext of the first session it opened and serves it whenever the
// vault refuses a blob, as a cache in front of the vault might. Every
// move it lets through must be counted as accepted.
func TestTamperMovesHarnessCatchesCachingReader(t *testing.T) {
	o := newOutcome("tamper/moves-selftest")
	o.selfTest = true
	var cached bool
	movesHarness(t, o, func(ctx context.Context, dir, name string, want []byte) (bool, error) {
		if !cached {
			// Fill the cache from the vault's own session, as it is now.
			b, err := file.New(dir)
			if err != nil {
				return false, err
			}
			defer b.Close()
			if v, err := vault.Open(ctx, b, opts(testPolicy)...); err == nil {
				if got, _, err := v.Store(sessionName).Open(ctx); err == nil && bytes.Equal(got, want) {
					cached = true
				}
				v.Close()
			}
		}
		ok, err := openAll(ctx, dir, name, want, testPolicy)
		if !ok && cached {
			return true, errors.New("served from the cache")
		}
		return ok, err
	})
	if !cached {
		t.Fatal("the caching reader never filled its cache")
	}
	if got := o.f.Get("accepted"); got == 0 || got != o.f.Get("inputs") {
		t.Fatalf("the moves harness counted %d of %d moves accepted by a reader that serves every refusal from its cache: %s", got, o.f.Get("inputs"), o.f)
	}
	o.f.Report(t)
}

// TestHostileHarnessCatchesExpensiveReaders runs the hostile-header
// harness (TestHostileHeaders's) on readers broken on purpose: one that
// runs a key derivation before it looks at the header's claims, and one
// that allocates what a forged header claims (capped here at 8 MiB) before
// refusing it. The harness must count the derivation and the allocation.
func TestHostileHarnessCatchesExpensiveReaders(t *testing.T) {
	ctx := context.Background()
	dir, plain := realVault(t, testPolicy)
	orig := blobAt(t, headerPath(dir))
	defer writeFile(t, headerPath(dir), orig)
	l := layout(t, orig)
	params := l.slot0 + 1 + 16
	forges := []forge{{"argon2id memory 4 GiB", func(h []byte) []byte { binary.BigEndian.PutUint32(h[params+4:], 4<<20); return h }}}
	open := func(h []byte) (bool, error) {
		writeFile(t, headerPath(dir), h)
		return openAll(ctx, dir, sessionName, plain, kdf.InsecurePolicyForTesting)
	}
	sum := figures.New("tamper/hostile-selftest")
	sum.Declare("derivations", "max_alloc_kib")
	defer sum.Report(t)
	var sink []byte
	for _, c := range []struct {
		name  string
		open  func(h []byte) (bool, error)
		check func(o *outcome) bool
	}{
		{"derives first", func(h []byte) (bool, error) {
			k, err := kdf.Derive([]byte(passphrase), make([]byte, 16), kdf.Floor)
			if err != nil {
				return false, err
			}
			k.Destroy()
			return open(h)
		}, func(o *outcome) bool { return o.f.Get("derivations") > 0 }},
		{"allocates the claimed memory", func(h []byte) (bool, error) {
			sink = make([]byte, 2*hostileMaxAlloc)
			for i := range sink {
				sink[i] = byte(i)
			}
			return open(h)
		}, func(o *outcome) bool { return o.f.Get("max_alloc_kib") > hostileMaxAlloc>>10 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOutcome("tamper/hostile-selftest")
			o.selfTest = true
			hostileHarness(t, o, forges, c.open, orig)
			sum.Add("derivations", o.f.Get("derivations"))
			sum.Max("max_alloc_kib", o.f.Get("max_alloc_kib"))
			if !c.check(o) {
				t.Fatalf("the hostile-header harness did not count a reader that %s: %s", c.name, o.f)
			}
			t.Logf("a reader that %s: %s", c.name, o.f)
		})
	}
	_ = sink
}
