package main

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReadPassphrase: whatever a passphrase file holds, reading it never
// panics, never returns more than maxPassphraseLen bytes or an empty
// passphrase, strips at most one trailing newline, and never puts the
// input into an error message.
func FuzzReadPassphrase(f *testing.F) {
	for _, s := range []string{"pw\n", "pw\r\n", "pw", "\n", "", "a\n\n", "\r\n\r\n", strings.Repeat("x", maxPassphraseLen+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := readPassphrase(bytes.NewReader(in), "fuzz")
		if err != nil {
			if len(in) > 3 && strings.Contains(err.Error(), string(in)) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(p) == 0 || len(p) > maxPassphraseLen {
			t.Fatalf("passphrase of %d bytes accepted", len(p))
		}
		trimmed := bytes.TrimSuffix(bytes.TrimSuffix(in, []byte("\n")), []byte("\r"))
		if !bytes.HasSuffix(in, []byte("\n")) {
			trimmed = in
		}
		if !bytes.Equal(p, trimmed) {
			t.Fatalf("readPassphrase(%q) = %q, want %q", in, p, trimmed)
		}
	})
}
