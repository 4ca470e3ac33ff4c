//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
)

// otherUID is a uid that no account on the test machine uses: folders
// chowned to it belong to "another user".
const otherUID = 48213

// mkdirMode makes a folder and sets its mode exactly (the umask aside).
func mkdirMode(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAncestorsStrictModes: like OpenSSH's StrictModes, New refuses a vault
// folder below a folder that group or others can write (unless it has the
// sticky bit, as /tmp), or that another user owns, with an *UnsafeError
// naming that folder; a symlinked parent is resolved and its target checked
// the same way, and a link owned by another user is refused. Real chmod,
// chown and symlinks.
func TestAncestorsStrictModes(t *testing.T) {
	root := os.Geteuid() == 0
	base := t.TempDir() // under /tmp: root-owned and sticky
	safe := mkdirMode(t, filepath.Join(base, "safe"), 0o755)
	open := mkdirMode(t, filepath.Join(base, "open"), 0o777)
	group := mkdirMode(t, filepath.Join(base, "group"), 0o770)
	sticky := mkdirMode(t, filepath.Join(base, "sticky"), 0o777|os.ModeSticky)
	deep := mkdirMode(t, filepath.Join(open, "a"), 0o700)
	deep = mkdirMode(t, filepath.Join(deep, "b"), 0o700)
	if err := os.Symlink(safe, filepath.Join(base, "to-safe")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("open", filepath.Join(base, "to-open")); err != nil { // relative
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "to-safe"), filepath.Join(base, "to-link")); err != nil { // a link to a link
		t.Fatal(err)
	}
	type tc struct {
		what   string
		parent string
		bad    string // the folder or link the refusal must name; "" accepted
		fix    string
	}
	cases := []tc{
		{"parent 0755, ours", safe, "", ""},
		{"parent 0777, no sticky bit", open, open, "chmod go-w " + open},
		{"parent 0770, group-writable", group, group, "chmod go-w " + group},
		{"parent 1777, sticky like /tmp", sticky, "", ""},
		{"grandparent 0777 two levels up", deep, open, "chmod go-w " + open},
		{"symlinked parent, target safe", filepath.Join(base, "to-safe"), "", ""},
		{"link to a link to a safe folder", filepath.Join(base, "to-link"), "", ""},
		{"symlinked parent (relative), target 0777", filepath.Join(base, "to-open"), open, "chmod go-w " + open},
	}
	if root {
		foreign := mkdirMode(t, filepath.Join(base, "foreign"), 0o755)
		if err := os.Chown(foreign, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		foreignLink := filepath.Join(base, "foreign-link")
		if err := os.Symlink(safe, foreignLink); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(foreignLink, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		cases = append(cases,
			tc{"parent owned by another uid", foreign, foreign, "keep the vault in a folder that only you (and root) control"},
			tc{"symlinked parent owned by another uid", foreignLink, foreignLink, "name the vault folder by its real path"},
		)
	} else {
		t.Log("not root: the chown cases are skipped")
	}
	fig := figures.New("file/ancestors")
	fig.Declare("cases", "safe", "opened", "unsafe", "refused_naming_folder")
	for _, c := range cases {
		fig.Inc("cases")
		dir := filepath.Join(c.parent, "vault-"+filepath.Base(c.what))
		b, err := file.New(dir)
		if c.bad == "" {
			fig.Inc("safe")
			if err != nil {
				t.Errorf("%s: %v", c.what, err)
				continue
			}
			if _, err := b.Put(context.Background(), "s", []byte("x"), backends.Absent); err != nil {
				t.Errorf("%s: put: %v", c.what, err)
			} else {
				fig.Inc("opened")
			}
			b.Close()
			continue
		}
		fig.Inc("unsafe")
		if err == nil {
			b.Close()
			t.Errorf("%s: accepted", c.what)
			continue
		}
		t.Logf("%s: %v", c.what, err)
		wantUnsafe(t, c.what, err, c.bad, c.fix)
		if u := (*file.UnsafeError)(nil); errors.As(err, &u) && u.Path == c.bad && errors.Is(err, backends.ErrPermission) {
			fig.Inc("refused_naming_folder")
		}
	}
	fig.Report(t)
	// A vault that opened is refused once an ancestor is opened up, and
	// opens again once it is closed back.
	dir := filepath.Join(safe, "later")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := os.Chmod(safe, 0o757); err != nil {
		t.Fatal(err)
	}
	_, err = file.New(dir)
	wantUnsafe(t, "ancestor opened up later", err, safe, "chmod go-w "+safe)
	if err := os.Chmod(safe, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err = file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}
