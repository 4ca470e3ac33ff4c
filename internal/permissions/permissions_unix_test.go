//go:build unix

package permissions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

const (
	passphrase  = "permissions-harness-passphrase"
	sessionName = "bot"
)

// vaultctl builds cmd/vaultctl once per test binary.
func vaultctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vaultctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sessionvault/sessionvault/cmd/vaultctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build vaultctl: %v\n%s", err, out)
	}
	return bin
}

type cli struct {
	bin, passFile string
}

func (c cli) run(t *testing.T, dir string, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--dir", dir, "--passphrase-file", c.passFile}, args...)...)
	cmd.Env = append(os.Environ(), "VAULTCTL_DIR=", "VAULTCTL_PASSPHRASE=")
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, o.String(), e.String()
}

// newVault makes a vault with vaultctl (production KDF parameters) holding
// one session, and checks every mode under the umask in force.
func newVault(t *testing.T, c cli) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	// Under umask 000 t.TempDir is 0777: an ancestor the backend refuses
	// (backends/file StrictModes). The vault folder's parent is ours.
	if err := os.Chmod(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	// The floor of the default policy: the cheapest parameters that
	// vaultctl and the library accept without any test-only option.
	if code, _, e := c.run(t, dir, nil, "init", "--kdf-time", "2", "--kdf-memory", "19", "--kdf-threads", "1"); code != 0 {
		t.Fatalf("vaultctl init: exit %d: %s", code, e)
	}
	doc, err := os.ReadFile(filepath.Join("testdata", "session-after-login.json"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, e := c.run(t, dir, doc, "import", sessionName, "-"); code != 0 {
		t.Fatalf("vaultctl import: exit %d: %s", code, e)
	}
	return dir
}

// modes returns every path under dir whose permission bits are not 0600
// for files and 0700 for folders.
func badModes(t *testing.T, dir string) []string {
	t.Helper()
	var bad []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want || !(fi.Mode().IsRegular() || fi.IsDir()) {
			bad = append(bad, p+" "+fi.Mode().String())
		}
		return nil
	})
	return bad
}

// libraryOpen opens the vault and the session through the library.
func libraryOpen(dir string) error {
	ctx := context.Background()
	b, err := file.New(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(passphrase)), vault.WithKDFPolicy(kdf.DefaultPolicy))
	if err != nil {
		return err
	}
	defer v.Close()
	_, _, err = v.Store(sessionName).Open(ctx)
	return err
}

// checkRefusal is the harness's check of one unsafe vault: open (the
// library, or a broken reader in the self-test) must refuse dir with an
// error matching backends.ErrPermission whose message has the fix.
func checkRefusal(open func(dir string) error, dir, fix string) (typed, fixed bool, err error) {
	err = open(dir)
	switch {
	case err == nil:
		return false, false, errors.New("the unsafe vault opened")
	case !errors.Is(err, backends.ErrPermission):
		return false, false, fmt.Errorf("%v, want an error matching backends.ErrPermission", err)
	case !strings.Contains(err.Error(), fix):
		return true, false, fmt.Errorf("message lacks the fix (%q): %v", fix, err)
	}
	return true, true, nil
}

func TestPermissions(t *testing.T) {
	c := cli{bin: vaultctl(t), passFile: filepath.Join(t.TempDir(), "pass")}
	if err := os.WriteFile(c.passFile, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := figures.New("permissions")
	f.Declare("cases", "library_typed", "library_fix_in_message", "vaultctl_exit7", "vaultctl_fix_in_message", "bad_modes_umask000")

	t.Run("umask 000", func(t *testing.T) {
		old := syscall.Umask(0)
		defer syscall.Umask(old)
		dir := newVault(t, c)
		// The library's own writes, too: a second session and a rotation.
		ctx := context.Background()
		b, err := file.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(passphrase)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Store("second").Seal(ctx, []byte(`{"access_token":"a","refresh_token":"r","expires_at":null}`), backends.Absent); err != nil {
			t.Fatal(err)
		}
		if err := v.RotateKey(ctx, nil); err != nil {
			t.Fatal(err)
		}
		v.Close()
		b.Close()
		bad := badModes(t, dir)
		f.Add("bad_modes_umask000", int64(len(bad)))
		if len(bad) > 0 {
			t.Errorf("under umask 000: %q", bad)
		}
	})

	cases := unsafeCases()
	template := newVault(t, c)
	if err := libraryOpen(template); err != nil {
		t.Fatalf("the intact vault does not open: %v", err)
	}
	if code, _, e := c.run(t, template, nil, "status"); code != 0 {
		t.Fatalf("vaultctl status on the intact vault: exit %d: %s", code, e)
	}
	for _, uc := range cases {
		t.Run(uc.name, func(t *testing.T) {
			if uc.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown to nobody (CI runs as root)")
			}
			dir := filepath.Join(t.TempDir(), "vault")
			if out, err := exec.Command("cp", "-a", template, dir).CombinedOutput(); err != nil {
				t.Fatalf("cp -a: %v\n%s", err, out)
			}
			fix := uc.breakIt(t, filepath.Clean(dir))
			f.Inc("cases")

			typed, fixed, err := checkRefusal(libraryOpen, dir, fix)
			if typed {
				f.Inc("library_typed")
			}
			if fixed {
				f.Inc("library_fix_in_message")
			}
			if err != nil {
				t.Errorf("library: %v", err)
			}
			for _, args := range [][]string{{"status"}, {"show", sessionName}, {"verify"}} {
				code, stdout, stderr := c.run(t, dir, nil, args...)
				if code != 7 {
					t.Errorf("vaultctl %s: exit %d, want 7: stderr %q, stdout %q", args[0], code, stderr, stdout)
					continue
				}
				f.Inc("vaultctl_exit7")
				if strings.Contains(stderr, fix) {
					f.Inc("vaultctl_fix_in_message")
				} else {
					t.Errorf("vaultctl %s: stderr lacks the fix (%q): %s", args[0], fix, stderr)
				}
			}
		})
	}
	f.Report(t)
}

// unsafeCase makes a copy of a good vault unsafe in one way.
type unsafeCase struct {
	name string
	// break makes the vault at dir unsafe and returns the words the
	// fix must contain.
	breakIt func(t *testing.T, dir string) (fix string)
	root    bool
}

// unsafeCases are the ways the harness makes a vault unsafe.
func unsafeCases() []unsafeCase {
	chmod := func(rel string, mode fs.FileMode, fix string) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			if err := os.Chmod(filepath.Join(dir, rel), mode); err != nil {
				t.Fatal(err)
			}
			return fix
		}
	}
	symlink := func(rel string) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			p := filepath.Join(dir, rel)
			moved := p + ".real"
			if err := os.Rename(p, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, p); err != nil {
				t.Fatal(err)
			}
			return "link"
		}
	}
	return []unsafeCase{
		{name: "vault.hdr 0644", breakIt: chmod("vault.hdr", 0o644, "chmod")},
		{name: "session file 0644", breakIt: chmod("sessions/bot.sealed", 0o644, "chmod")},
		{name: "session file 0604", breakIt: chmod("sessions/bot.sealed", 0o604, "chmod")},
		{name: "folder 0755", breakIt: chmod(".", 0o755, "chmod")},
		{name: "sessions folder 0750", breakIt: chmod("sessions", 0o750, "chmod")},
		{name: "folder is a symlink", breakIt: symlink(".")},
		{name: "vault.hdr is a symlink", breakIt: symlink("vault.hdr")},
		{name: "sessions folder is a symlink", breakIt: symlink("sessions")},
		{name: "session file is a symlink", breakIt: symlink("sessions/bot.sealed")},
		{name: "locks folder is a symlink", breakIt: symlink("locks")},
		{name: "folder owned by another user", root: true, breakIt: func(t *testing.T, dir string) string {
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return "chown"
		}},
		{name: "session file owned by another user", root: true, breakIt: func(t *testing.T, dir string) string {
			if err := os.Chown(filepath.Join(dir, "sessions", "bot.sealed"), 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return "chown"
		}},
	}
}
