package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// systemdCreds returns the path of systemd-creds, or skips (fails under
// CI: Debian's systemd ships it).
func systemdCreds(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-creds")
	if err != nil {
		if servicetest.Required() {
			t.Fatalf("systemd-creds is required under CI: %v", err)
		}
		t.Skipf("no systemd-creds: %v", err)
	}
	return p
}

// TestPassphraseCredentialSystemdCreds: a passphrase encrypted with the
// real systemd-creds (host key), decrypted into a private folder as
// systemd does for LoadCredentialEncrypted=, opens the vault through
// WithPassphraseCredential. The plaintext passphrase reaches
// systemd-creds on its standard input only, never a file outside the
// private folder.
func TestPassphraseCredentialSystemdCreds(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd credentials are Linux only")
	}
	creds := systemdCreds(t)
	ctx := context.Background()
	const name = "vault-passphrase"
	pass := []byte("a passphrase systemd keeps for the bot\n")
	work := t.TempDir()
	enc := filepath.Join(work, name+".cred")
	cmd := exec.Command(creds, "encrypt", "--with-key=host", "--name="+name, "-", enc)
	cmd.Stdin = bytes.NewReader(pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-creds encrypt: %v: %s", err, out)
	}
	sealed, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pass[:len(pass)-1]) {
		t.Fatal("the encrypted credential holds the passphrase")
	}
	// What systemd does at service start: decrypt into a private folder,
	// the file readable by the service's user only.
	dir := filepath.Join(work, "credentials")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	if msg, err := exec.Command(creds, "decrypt", "--name="+name, enc, out).CombinedOutput(); err != nil {
		t.Fatalf("systemd-creds decrypt: %v: %s", err, msg)
	}
	if err := os.Chmod(out, 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv(CredentialsDirectoryEnv, dir)

	v, b := newVault(t, WithPassphraseCredential(name), WithInsecureKDFForTesting())
	seal(t, v, "bot", "session")
	v.Close()
	// The credential is the passphrase without its trailing newline.
	vp := mustOpen(t, b, cheap(strings.TrimSuffix(string(pass), "\n"))...)
	if open(t, vp, "bot") != "session" {
		t.Fatal("wrong session")
	}
	vc := mustOpen(t, b, WithPassphraseCredential(name), WithInsecureKDFForTesting())
	if open(t, vc, "bot") != "session" {
		t.Fatal("wrong session")
	}
	f := figures.New("vault/credential-systemd")
	f.Inc("opened")
	// "systemd 252 (252.39-1~deb12u1)": the version systemd-creds is from.
	if v, err := exec.Command(creds, "--version").Output(); err == nil {
		if fields := strings.Fields(string(v)); len(fields) >= 2 && fields[0] == "systemd" {
			f.Note("systemd_version", fields[1])
		}
	}
	defer f.Report(t)
	// A credential encrypted under another name does not decrypt as this
	// one: systemd-creds binds the name.
	if err := exec.Command(creds, "decrypt", "--name=other", enc, filepath.Join(dir, "other")).Run(); err == nil {
		t.Fatal("systemd-creds decrypted the credential under another name")
	}
	_ = ctx
}

func TestPassphraseCredentialRefusals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no systemd credentials on Windows")
	}
	ctx := context.Background()
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	write := func(name, body string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("good", "s3cr3t\n", 0o400)
	write("world", "s3cr3t", 0o404)
	write("groupw", "s3cr3t", 0o460)
	write("empty", "", 0o400)
	write("newline", "\n", 0o400)
	write("long", strings.Repeat("x", MaxPassphraseSize+1), 0o400)
	write("max", strings.Repeat("x", MaxPassphraseSize)+"\n", 0o400)
	write("grouponly", "s3cr3t", 0o440)
	os.Symlink(filepath.Join(dir, "good"), filepath.Join(dir, "link"))
	os.Mkdir(filepath.Join(dir, "adir"), 0o700)

	f := figures.New("vault/credential-refusals")
	f.Declare("cases", "refused", "accepted", "content_shown")
	defer f.Report(t)
	b, _ := newMemory()
	try := func(env, name string) error {
		t.Helper()
		t.Setenv(CredentialsDirectoryEnv, env)
		_, err := Create(ctx, b, WithPassphraseCredential(name), WithInsecureKDFForTesting())
		return err
	}
	for _, c := range []struct{ env, name, what string }{
		{"", "good", "unset"},
		{"relative/dir", "good", "relative"},
		{dir, "", "empty name"},
		{dir, "../good", "slash"},
		{dir, "..", "dot-dot"},
		{dir, "world", "world-readable"},
		{dir, "groupw", "group-writable"},
		{dir, "empty", "empty file"},
		{dir, "newline", "only a newline"},
		{dir, "long", "too long"},
		{dir, "link", "symlink"},
		{dir, "adir", "a folder"},
		{dir, "missing", "missing"},
	} {
		err := try(c.env, c.name)
		f.Inc("cases")
		if err == nil {
			f.Inc("accepted")
			t.Errorf("%s: accepted", c.what)
			continue
		}
		var ce *CredentialError
		if !errors.Is(err, ErrCredential) || !errors.As(err, &ce) || ce.Name != c.name {
			t.Errorf("%s: %v, want a *CredentialError", c.what, err)
		} else {
			f.Inc("refused")
		}
		unsafe := c.what == "world-readable" || c.what == "group-writable" || c.what == "symlink"
		if errors.Is(err, backends.ErrPermission) != unsafe {
			t.Errorf("%s: %v: backends.ErrPermission only for unsafe modes and symlinks", c.what, err)
		}
		if errors.Is(err, ErrNotFound) != (c.what == "missing") {
			t.Errorf("%s: %v: ErrNotFound only for a missing file", c.what, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			f.Inc("content_shown")
			t.Errorf("%s: the error shows the content: %v", c.what, err)
		}
	}
	if _, _, err := b.Get(ctx, ".vault"); err == nil {
		t.Fatal("a refused credential created a vault")
	}
	for _, name := range []string{"good", "max", "grouponly"} {
		t.Setenv(CredentialsDirectoryEnv, dir)
		p, err := ReadPassphraseCredential(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := len(p); (name == "max" && n != MaxPassphraseSize) || (name != "max" && string(p) != "s3cr3t") {
			t.Fatalf("%s: read %d bytes", name, n)
		}
	}
}
