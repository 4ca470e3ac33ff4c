package leaktest

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/sessionvault/sessionvault/internal/memscan"
)

// leakyToken is a deliberately careless secret holder for the output
// checker's self-test: a plain []byte field, and an error that quotes it.
type leakyToken struct {
	Value []byte
}

func (l leakyToken) Err() error { return errors.New("leaky: bad token " + string(l.Value)) }

// TestOutputsHarnessCatchesLeakyTypes runs the output checker on a type
// that prints its secret (raw, and hex-encoded in a second one) and on an
// error that quotes it: every channel that shows the bytes must be
// counted, or the zero leaks of the real types prove nothing.
func TestOutputsHarnessCatchesLeakyTypes(t *testing.T) {
	ms := newMarkers()
	c := newOutputChecker(t, ms)
	c.selfTest = true
	p := ms.Access.Plain()
	defer memscan.Wipe(p)
	c.value("leaky", leakyToken{Value: p})
	if c.f.Get("leaks") == 0 {
		t.Fatal("a struct with the token in a []byte field leaked nothing the checker saw")
	}
	before := c.f.Get("leaks")
	c.value("leaky hex", struct{ Hex string }{hex.EncodeToString(p)})
	if c.f.Get("leaks") == before {
		t.Fatal("a hex copy of the token went unseen")
	}
	before = c.f.Get("leaks")
	c.err("leaky error", leakyToken{Value: p}.Err())
	if c.f.Get("leaks") == before {
		t.Fatal("an error that quotes the token went unseen")
	}
	t.Logf("self-test: %d leaks counted in %d outputs", c.f.Get("leaks"), c.f.Get("outputs"))
}
