package main

import (
	"crypto/rand"
	"fmt"
)

// generatedGroups and groupLen shape a generated passphrase: 6 groups of
// 5 characters from a 32-letter alphabet, 150 bits, typed easily and read
// aloud without ambiguity (no 0/O, 1/l/I).
const (
	generatedGroups = 6
	groupLen        = 5
	passAlphabet    = "abcdefghijkmnpqrstuvwxyz23456789" // 32 letters
)

// generatePassphrase returns a random passphrase; the caller wipes it.
func generatePassphrase() []byte {
	raw := make([]byte, generatedGroups*groupLen)
	rand.Read(raw)
	out := make([]byte, 0, generatedGroups*(groupLen+1)-1)
	for i, b := range raw {
		if i > 0 && i%groupLen == 0 {
			out = append(out, '-')
		}
		out = append(out, passAlphabet[b%32]) // 256 is a multiple of 32: no bias
		raw[i] = 0
	}
	return out
}

// weakPassphrase returns why p is weak, or "": shorter than 12 bytes, or
// fewer than 6 different characters. It is a floor, not a strength
// estimate.
func weakPassphrase(p []byte) string {
	if len(p) < minPassphraseLen {
		return fmt.Sprintf("%d characters, fewer than %d", len(p), minPassphraseLen)
	}
	var seen [256]bool
	n := 0
	for _, c := range p {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	if n < minDistinctChars {
		return fmt.Sprintf("only %d different characters", n)
	}
	return ""
}
