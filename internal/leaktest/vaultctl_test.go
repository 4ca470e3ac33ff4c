package leaktest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/memscan"
)

// TestVaultctlOutputs runs every vaultctl command except export, with
// text and --json output, on success and on failure, over a session whose
// every secret is a marker and a vault whose passphrases are markers:
// no marker may appear on stdout or stderr, in any encoding.
func TestVaultctlOutputs(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "vaultctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sessionvault/sessionvault/cmd/vaultctl").CombinedOutput(); err != nil {
		t.Fatalf("go build vaultctl: %v\n%s", err, out)
	}
	ms := newMarkers()
	pass1, pass2, wrongPass := memscan.NewMarker(40), memscan.NewMarker(40), memscan.NewMarker(40)
	all := []*memscan.Marker{pass1, pass2, wrongPass}
	for _, m := range ms.all() {
		all = append(all, m)
	}
	writeMarker := func(name string, m *memscan.Marker) string {
		p := filepath.Join(tmp, name)
		b := m.AppendPlain(nil)
		defer memscan.Wipe(b)
		if err := os.WriteFile(p, append(b, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pf1, pf2, pfWrong := writeMarker("pass1", pass1), writeMarker("pass2", pass2), writeMarker("wrong", wrongPass)
	doc := ms.sessionJSON()
	sessionFile := filepath.Join(tmp, "session.json")
	if err := os.WriteFile(sessionFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	broken := append(append([]byte(nil), doc[:len(doc)/2]...), []byte("\x01")...)
	brokenFile := filepath.Join(tmp, "broken.json")
	if err := os.WriteFile(brokenFile, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	memscan.Wipe(doc)
	dir := filepath.Join(tmp, "vault")

	f := figures.New("leaks/vaultctl")
	f.Declare("runs", "leaks")
	run := func(wantOK bool, stdin []byte, pass string, args ...string) {
		t.Helper()
		full := append([]string{"--dir", dir, "--passphrase-file", pass}, args...)
		cmd := exec.Command(bin, full...)
		cmd.Env = append(os.Environ(), "VAULTCTL_DIR=", "VAULTCTL_PASSPHRASE=")
		cmd.Stdin = bytes.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		f.Inc("runs")
		if ok := err == nil; ok != wantOK {
			t.Errorf("vaultctl %s: success=%v, want %v: %s", strings.Join(args, " "), ok, wantOK, e.String())
		}
		for i, m := range all {
			for stream, out := range map[string][]byte{"stdout": o.Bytes(), "stderr": e.Bytes()} {
				if m.MatchesAny(out) {
					f.Inc("leaks")
					t.Errorf("vaultctl %s: %s shows secret #%d", strings.Join(args, " "), stream, i)
				}
			}
		}
	}
	sessionJSON, _ := os.ReadFile(sessionFile)
	defer memscan.Wipe(sessionJSON)
	kdfArgs := []string{"--kdf-time", "2", "--kdf-memory", "19", "--kdf-threads", "1"}
	run(true, nil, pf1, append([]string{"init"}, kdfArgs...)...)
	for _, j := range [][]string{nil, {"--json"}} {
		run(true, nil, pf1, append(j, "import", "a"+strings.Join(j, ""), sessionFile)...)
		run(true, sessionJSON, pf1, append(j, "import", "b"+strings.Join(j, ""), "-")...)
		run(false, nil, pf1, append(j, "import", "c", brokenFile)...)
		run(false, nil, pf1, append(j, "import", "a", sessionFile)...) // exists
		run(true, nil, pf1, append(j, "show", "a")...)
		run(false, nil, pf1, append(j, "show", "missing")...)
		run(true, nil, pf1, append(j, "status")...)
		run(true, nil, pf1, append(j, "verify")...)
		run(true, nil, pf1, append(j, "verify", "--recover")...)
		run(false, nil, pfWrong, append(j, "status")...)
		run(false, nil, pfWrong, append(j, "show", "a")...)
		run(true, nil, pf1, append(j, "gc", "--dry-run")...)
	}
	run(true, nil, pf1, "rotate-key")
	run(true, nil, pf1, "--json", "rotate-key")
	run(true, nil, pf1, append([]string{"passwd", "--new-passphrase-file", pf2}, kdfArgs...)...)
	run(false, nil, pf1, "status") // the old passphrase
	run(true, nil, pf2, "--json", "status")
	run(false, nil, pfWrong, append([]string{"passwd", "--new-passphrase-file", pf1}, kdfArgs...)...)
	run(true, nil, pf2, "rm", "--yes", "b")
	run(true, nil, pf2, "gc", "--yes")
	for _, c := range []string{"init", "import", "show", "status", "rotate-key", "passwd", "verify", "rm", "gc"} {
		run(true, nil, pf2, c, "--help")
	}
	run(true, nil, pf2, "help")
	run(true, nil, pf2, "completion", "bash")
	run(false, nil, pf2, "no-such-command")
	f.Report(t)

	// Control: export prints the plaintext (the user asked for it), so the
	// same check must see the markers there.
	leaks := f.Get("leaks")
	cmd := exec.Command(bin, "--dir", dir, "--passphrase-file", pf2, "export", "a")
	cmd.Env = append(os.Environ(), "VAULTCTL_DIR=", "VAULTCTL_PASSPHRASE=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if !ms.Access.Matches(out) {
		t.Error("export's output does not show the access token marker: the check cannot see a leak")
	}
	memscan.Wipe(out)
	if f.Get("leaks") != leaks {
		t.Fatal("the control changed the leak count")
	}
}
