package tamper

import (
	"bytes"
	"testing"
)

func TestMutationsAreAllDistinctAndComplete(t *testing.T) {
	orig := []byte("header!")
	keep := append([]byte(nil), orig...)
	seen := map[string]bool{}
	n := 0
	Mutations(orig, func(m Mutation, b []byte) bool {
		n++
		if bytes.Equal(b, orig) {
			t.Errorf("%v yields the input unchanged", m)
		}
		if seen[string(b)] {
			t.Errorf("%v repeats an earlier mutation", m)
		}
		seen[string(b)] = true
		if len(b) > 0 {
			b[0] ^= 0xff // the callee may scribble on it
		}
		return true
	})
	if n != Count(len(orig)) {
		t.Fatalf("yielded %d, Count says %d", n, Count(len(orig)))
	}
	if !bytes.Equal(orig, keep) {
		t.Fatal("Mutations changed its input")
	}
	stopped := 0
	Mutations(orig, func(Mutation, []byte) bool { stopped++; return stopped < 3 })
	if stopped != 3 {
		t.Fatalf("did not stop when asked: %d", stopped)
	}
	if s := (Mutation{BitFlip, 1234}).String(); s != "bitflip 1234" {
		t.Fatal(s)
	}
}
