package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsAreOneLine runs vaultctl on many failing command lines, one
// or more per exit code, and checks that each prints exactly one line on
// stderr, "vaultctl: ...", and nothing else: a script that logs stderr
// gets one line per failure, and a message never spills a wrapped
// library error over several lines. (Running vaultctl with no command at
// all prints the usage, which is help, not an error, and is left out.)
func TestErrorsAreOneLine(t *testing.T) {
	dir, pass := makeVault(t, 1)
	base := filepath.Dir(dir)
	wrong := filepath.Join(base, "wrong")
	if err := os.WriteFile(wrong, []byte("not the passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A copy of the vault whose header file is damaged throughout (both of
	// its layout 2 records, so no older record stands in).
	bad := filepath.Join(base, "bad")
	copyPrivate(t, dir, bad)
	hdr := filepath.Join(bad, "vault.hdr")
	b, err := os.ReadFile(hdr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(hdr, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A vault folder others may write.
	open := filepath.Join(base, "open")
	copyPrivate(t, dir, open)
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(base, "missing")
	v := []string{"--dir", dir, "--passphrase-file", pass}
	cases := []struct {
		code int
		args []string
	}{
		{2, []string{"statsu"}},
		{2, []string{"help", "nope"}},
		{2, []string{"--nope", "status"}},
		{2, []string{"status", "--nope"}},
		{2, []string{"--backend", "s3", "status"}},
		{2, []string{"--backend", "redis", "status"}},
		{2, []string{"--redis-url", "redis://u:secret@localhost/", "--backend", "redis", "status"}},
		{2, []string{"--passphrase-file", "a", "--passphrase-fd", "3", "status"}},
		{2, []string{"init", "--kdf-memory", "8"}},
		{2, []string{"show"}},
		{2, append(append([]string{}, v...), "passwd", "--keychain")},
		{2, append(append([]string{}, v...), "rotate-key", "--passphrase")},
		{2, append(append([]string{}, v...), "init", "--tpm-pcrs", "7")},
		{2, []string{"--dir", dir, "status"}}, // no terminal to ask on
		{3, []string{"--dir", missing, "status"}},
		{3, []string{"--dir", missing, "--json", "verify"}},
		{3, append(append([]string{}, v...), "show", "no-such-session")},
		{3, append(append([]string{}, v...), "rm", "--yes", "no-such-session")},
		{3, append(append([]string{}, v...), "import", "s2", filepath.Join(base, "no-such-file.json"))},
		{3, []string{"--dir", dir, "--passphrase-file", filepath.Join(base, "no-such-pass"), "status"}},
		{4, []string{"--dir", dir, "--passphrase-file", wrong, "status"}},
		{4, []string{"--dir", dir, "--passphrase-file", wrong, "--json", "export", "s0"}},
		{5, []string{"--dir", bad, "--passphrase-file", pass, "status"}},
		{4, []string{"--dir", dir, "--keychain", "status"}},
		{4, []string{"--dir", dir, "--tpm", "--tpm-device", filepath.Join(base, "no-tpm"), "status"}},
		{6, []string{"--dir", filepath.Join(base, "tpm"), "--tpm-device", filepath.Join(base, "no-tpm"), "init", "--tpm-slot"}},
		{7, []string{"--dir", open, "--passphrase-file", pass, "status"}},
		{1, append(append([]string{}, v...), "init")},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, nil, c.args...)
		if code != c.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", c.args, code, c.code, stderr)
		}
		if !strings.HasPrefix(stderr, "vaultctl: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: stderr is not one line \"vaultctl: ...\":\n%s", c.args, stderr)
		}
	}
}

// copyPrivate copies the vault folder src to dst with the modes vaultctl
// makes (folders 0700, files 0600).
func copyPrivate(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o700)
		}
		return os.Chmod(p, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
