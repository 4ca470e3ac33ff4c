package tamper

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/sessionvault/sessionvault/backends/file"
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
