//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"strings"
	"testing"
)

// TestExportRefusesTerminal: export with standard output on a real
// terminal refuses (exit 2) before asking for any passphrase, and prints
// the tokens with --force.
func TestExportRefusesTerminal(t *testing.T) {
	dir, pass := makeVault(t, 1)
	r := startPTY(t, "--dir", dir, "--passphrase-file", pass, "export", "s0000")
	code, out := r.wait()
	if code != exitUsage || !strings.Contains(out, "standard output is a terminal") || strings.Contains(out, "crash-refresh-") {
		t.Fatalf("export on a terminal: exit %d: %q", code, out)
	}
	r = startPTY(t, "--dir", dir, "--passphrase-file", pass, "export", "--force", "s0000")
	code, out = r.wait()
	if code != 0 || !strings.Contains(out, "crash-refresh-0000") {
		t.Fatalf("export --force on a terminal: exit %d: %q", code, out)
	}
}
