//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGCConfirmOnTerminal: on a real terminal, gc lists what it would
// delete and asks; "n" (or just Enter) keeps everything, "y" deletes only
// the unrevivable session. rm asks the same way.
func TestGCConfirmOnTerminal(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "vault")
	const pass = "gc-pty-Passphrase-51c2"
	env := map[string]string{passphraseEnv: pass}
	if code, _, stderr := runCLI(t, env, append([]string{"--dir", dir, "init"}, floorKDF...)...); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	files := map[string]string{
		"dead": `{"access_token": "pty-a1", "refresh_token": "", "expires_at": "2020-01-01T00:00:00Z"}`,
		"idle": `{"access_token": "pty-a2", "refresh_token": "pty-r2", "expires_at": "2020-01-01T00:00:00Z"}`,
	}
	for name, body := range files {
		f := filepath.Join(tmp, name+".json")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI(t, env, "--dir", dir, "import", name, f); code != 0 {
			t.Fatalf("import %s: %d %s", name, code, stderr)
		}
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, "sessions", name+".sealed"))
		return err == nil
	}
	gc := func(answer string) string {
		r := startPTY(t, "--dir", dir, "gc")
		off := r.expect("Passphrase for", 0)
		off = r.expect(": ", off)
		r.typeLine(pass)
		off = r.expect(`would remove "dead" (access token expired, no refresh token)`, off)
		r.expect("Delete 1 session(s)? [y/N] ", off)
		r.typeLine(answer)
		code, out := r.wait()
		if code != 0 {
			t.Fatalf("gc answered %q: exit %d\n%s", answer, code, out)
		}
		return out
	}
	for _, no := range []string{"n", "", "nope"} {
		if out := gc(no); !strings.Contains(out, "0 removed, 2 kept") || !exists("dead") {
			t.Fatalf("answer %q deleted something:\n%s", no, out)
		}
	}
	if out := gc("Y"); !strings.Contains(out, `removed "dead"`) || exists("dead") || !exists("idle") {
		t.Fatalf("answer y:\n%s", out)
	}

	r := startPTY(t, "--dir", dir, "rm", "idle")
	off := r.expect("Passphrase for", 0)
	off = r.expect(": ", off)
	r.typeLine(pass)
	r.expect(`Delete session "idle"? [y/N] `, off)
	r.typeLine("n")
	if code, out := r.wait(); code != 0 || !strings.Contains(out, `kept "idle"`) || !exists("idle") {
		t.Fatalf("rm answered n: exit %d\n%s", code, out)
	}
}
