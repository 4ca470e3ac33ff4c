//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
	"github.com/sessionvault/sessionvault/backends/file"
)

// wantUnsafe checks that err is a refusal matching ErrPermission whose
// *file.UnsafeError names path and whose message contains fix.
func wantUnsafe(t *testing.T, what string, err error, path, fix string) {
	t.Helper()
	if !errors.Is(err, backends.ErrPermission) {
		t.Fatalf("%s: %v, want an error matching ErrPermission", what, err)
	}
	var u *file.UnsafeError
	if !errors.As(err, &u) {
		t.Fatalf("%s: %v carries no *file.UnsafeError", what, err)
	}
	if u.Path != path {
		t.Errorf("%s: UnsafeError.Path = %q, want %q", what, u.Path, path)
	}
	// The fix quotes paths for a shell; compare without the quotes.
	if !strings.Contains(strings.ReplaceAll(err.Error(), "'", ""), fix) {
		t.Errorf("%s: message %q does not contain the fix %q", what, err, fix)
	}
}

// newDir makes a vault folder with one header and one session, closes
// the backend, and returns the folder.
func newDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, _ := b.Put(ctx, backends.HeaderName, []byte("hdr"), backends.Absent)
	b.Put(ctx, backends.HeaderName, []byte("hdr2"), v)
	v, _ = b.Put(ctx, "s", []byte("one"), backends.Absent)
	if _, err := b.Put(ctx, "s", []byte("two"), v); err != nil {
		t.Fatal(err)
	}
	b.Close()
	return dir
}

// newV1Dir makes a vault folder of layout 1, as the layout-1 code left
// it: header and session s with their previous generations, each its own
// file holding the bare blob.
func newV1Dir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	for _, d := range []string{dir, filepath.Join(dir, "sessions"), filepath.Join(dir, "locks")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range map[string]string{
		"vault.hdr": "hdr2", ".vault.hdr.prev": "hdr",
		"sessions/s.sealed": "two", "sessions/.s.sealed.prev": "one",
	} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFolderRefusals(t *testing.T) {
	t.Run("folder 0755", func(t *testing.T) {
		dir := newDir(t)
		os.Chmod(dir, 0o755)
		_, err := file.New(dir)
		wantUnsafe(t, "New", err, dir, "chmod 700 "+dir)
		if !strings.Contains(err.Error(), "0755") {
			t.Errorf("message %q does not give the mode", err)
		}
	})
	t.Run("folder 0710", func(t *testing.T) {
		dir := newDir(t)
		os.Chmod(dir, 0o710)
		_, err := file.New(dir)
		wantUnsafe(t, "New", err, dir, "chmod 700 "+dir)
	})
	for _, sub := range []string{"sessions", "locks"} {
		t.Run(sub+" 0777", func(t *testing.T) {
			dir := newDir(t)
			os.Chmod(filepath.Join(dir, sub), 0o777)
			_, err := file.New(dir)
			wantUnsafe(t, "New", err, filepath.Join(dir, sub), "chmod 700 "+filepath.Join(dir, sub))
		})
		t.Run(sub+" symlink", func(t *testing.T) {
			dir := newDir(t)
			real := filepath.Join(filepath.Dir(dir), "real-"+sub)
			os.Rename(filepath.Join(dir, sub), real)
			os.Symlink(real, filepath.Join(dir, sub))
			_, err := file.New(dir)
			wantUnsafe(t, "New", err, filepath.Join(dir, sub), "is a symbolic link")
		})
		t.Run(sub+" regular file", func(t *testing.T) {
			dir := newDir(t)
			os.RemoveAll(filepath.Join(dir, sub))
			os.WriteFile(filepath.Join(dir, sub), []byte("x"), 0o600)
			_, err := file.New(dir)
			wantUnsafe(t, "New", err, filepath.Join(dir, sub), "not a folder")
		})
	}
	t.Run("folder symlink", func(t *testing.T) {
		dir := newDir(t)
		link := filepath.Join(filepath.Dir(dir), "link")
		os.Symlink(dir, link)
		_, err := file.New(link)
		wantUnsafe(t, "New", err, link, "is a symbolic link")
	})
	t.Run("dangling folder symlink", func(t *testing.T) {
		base := t.TempDir()
		link := filepath.Join(base, "link")
		target := filepath.Join(base, "nowhere")
		os.Symlink(target, link)
		_, err := file.New(link)
		wantUnsafe(t, "New", err, link, "is a symbolic link")
		if _, err := os.Lstat(target); err == nil {
			t.Error("New created the folder at the link's target")
		}
	})
	t.Run("regular file as folder", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, []byte("x"), 0o600)
		_, err := file.New(p)
		wantUnsafe(t, "New", err, p, "not a folder")
	})
	t.Run("missing parent", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "no", "such")
		_, err := file.New(p)
		if !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("New with a missing parent: %v, want ErrNotFound", err)
		}
	})
	// Layout 2 has no folder-wide write lock: each name's write lock
	// file (locks/.NAME.wlock) is planted on in TestFileRefusals.
}

// TestOtherOwner chowns the folder, then a session file, to nobody.
func TestOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	uid := 65534
	if u, err := user.Lookup("nobody"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
	}
	t.Run("folder", func(t *testing.T) {
		dir := newDir(t)
		if err := os.Chown(dir, uid, -1); err != nil {
			t.Fatal(err)
		}
		_, err := file.New(dir)
		wantUnsafe(t, "New", err, dir, "chown 0 "+dir)
		if !strings.Contains(err.Error(), "owned by uid "+strconv.Itoa(uid)) {
			t.Errorf("message %q does not name the owner", err)
		}
	})
	t.Run("session file", func(t *testing.T) {
		dir := newDir(t)
		p := filepath.Join(dir, "sessions", "s.sealed")
		os.Chown(p, uid, -1)
		b, err := file.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_, _, err = b.Get(context.Background(), "s")
		wantUnsafe(t, "Get", err, p, "chown 0 "+p)
	})
}

// TestFileRefusals plants an unsafe file at each stored path and checks
// that every method touching it refuses, leaving the planted file and
// anything it points to alone.
func TestFileRefusals(t *testing.T) {
	type plant struct {
		name  string // blob name
		file  string // path relative to the folder
		calls []string
		v1    bool // in a folder of layout 1 (previous generations in their own files)
	}
	plants := []plant{
		{backends.HeaderName, "vault.hdr", []string{"Get", "Put", "Put(Any)", "Delete", "Previous", "DropPrevious"}, false},
		{"s", "sessions/s.sealed", []string{"Get", "Put", "Put(Any)", "Delete", "Previous", "Restore", "DropPrevious"}, false},
		{"s", "sessions/s.sealed", []string{"Get", "Put", "Put(Any)", "Delete", "Restore"}, true},
		{"s", "sessions/.s.sealed.prev", []string{"Previous", "Restore"}, true},
		{backends.HeaderName, ".vault.hdr.prev", []string{"Previous", "Restore"}, true},
		{"s", "locks/s.lock", []string{"Lock"}, false},
		{"s", "locks/.s.wlock", []string{"Put", "Put(Any)", "Delete", "Restore", "DropPrevious"}, false},
	}
	kinds := []struct {
		name string
		make func(t *testing.T, p string) (fix string)
	}{
		{"0644", func(t *testing.T, p string) string {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return "chmod 600 " + p
		}},
		{"0660", func(t *testing.T, p string) string {
			os.Chmod(p, 0o660)
			return "chmod 600 " + p
		}},
		{"0604", func(t *testing.T, p string) string {
			os.Chmod(p, 0o604)
			return "chmod 600 " + p
		}},
		{"symlink", func(t *testing.T, p string) string {
			target := filepath.Join(t.TempDir(), "target")
			os.WriteFile(target, []byte("target"), 0o600)
			os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if b, _ := os.ReadFile(target); string(b) != "target" {
					t.Errorf("the symbolic link's target was changed: %q", b)
				}
			})
			return "is a symbolic link"
		}},
		{"dangling symlink", func(t *testing.T, p string) string {
			target := filepath.Join(t.TempDir(), "nowhere")
			os.Remove(p)
			os.Symlink(target, p)
			t.Cleanup(func() {
				if _, err := os.Lstat(target); err == nil {
					t.Error("a file was created at the dangling link's target")
				}
			})
			return "is a symbolic link"
		}},
		{"folder", func(t *testing.T, p string) string {
			os.Remove(p)
			os.Mkdir(p, 0o700)
			return "not a regular file"
		}},
		{"fifo", func(t *testing.T, p string) string {
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return "named pipe"
		}},
	}
	for _, pl := range plants {
		for _, k := range kinds {
			for _, call := range pl.calls {
				layout := "v2"
				if pl.v1 {
					layout = "v1"
				}
				t.Run(layout+"/"+pl.file+"/"+k.name+"/"+call, func(t *testing.T) {
					dir := newDir(t)
					if pl.v1 {
						dir = newV1Dir(t)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					b, err := file.New(dir)
					if err != nil {
						t.Fatal(err)
					}
					defer b.Close()
					if pl.file == "locks/s.lock" {
						l, err := b.Lock(ctx, "s")
						if err != nil {
							t.Fatal(err)
						}
						l.Unlock(ctx)
					}
					if pl.file == "locks/.s.wlock" { // made by newDir's writes
						if _, err := os.Lstat(filepath.Join(dir, pl.file)); err != nil {
							t.Fatal(err)
						}
					}
					p := filepath.Join(dir, pl.file)
					fix := k.make(t, p)
					before, _ := os.Lstat(p)
					switch call {
					case "Get":
						_, _, err = b.Get(ctx, pl.name)
					case "Put":
						_, err = b.Put(ctx, pl.name, []byte("new"), backends.Version("whatever"))
					case "Put(Any)":
						_, err = b.Put(ctx, pl.name, []byte("new"), backends.Any)
					case "Delete":
						err = b.Delete(ctx, pl.name, backends.Any)
					case "Previous":
						_, _, err = b.Previous(ctx, pl.name)
					case "Restore":
						_, err = b.Restore(ctx, pl.name, backends.Any)
					case "DropPrevious":
						err = b.DropPrevious(ctx, pl.name)
					case "Lock":
						var l backends.Lock
						if l, err = b.Lock(ctx, pl.name); err == nil {
							l.Unlock(ctx)
						}
					}
					wantUnsafe(t, call, err, p, fix)
					after, aerr := os.Lstat(p)
					if aerr != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
						t.Errorf("%s replaced or removed the planted file", call)
					}
					noTemps(t, dir)
				})
			}
		}
	}
}

// TestOversizeFile: a stored file over backends.MaxBlobSize is refused
// before it is read.
func TestOversizeFile(t *testing.T) {
	dir := newV1Dir(t)
	p := filepath.Join(dir, "sessions", "s.sealed")
	if err := os.Truncate(p, 1<<40); err != nil { // sparse: 1 TiB claimed
		t.Fatal(err)
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, _, err := b.Get(ctx, "s"); !errors.Is(err, backends.ErrTooLarge) {
		t.Fatalf("Get of a 1 TiB file: %v, want ErrTooLarge", err)
	}
	// It can be replaced unconditionally, or restored from the previous
	// generation.
	if _, err := b.Restore(ctx, "s", backends.Any); err != nil {
		t.Fatalf("Restore over an oversized file: %v", err)
	}
	if got, _, err := b.Get(ctx, "s"); err != nil || string(got) != "one" {
		t.Fatalf("Get after Restore: %q, %v", got, err)
	}
}

// TestBadNamesTouchNothing calls every method with every name of the
// reject list: each call is refused and not one file appears or changes,
// inside the folder or beside it.
func TestBadNamesTouchNothing(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	if _, err := b.Put(ctx, "s", []byte("x"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Dir(b.Path())
	before := walk(t, parent)
	for _, name := range backendtest.BadNames() {
		calls := map[string]error{}
		_, _, calls["Get"] = b.Get(ctx, name)
		_, calls["Put"] = b.Put(ctx, name, []byte("x"), backends.Any)
		calls["Delete"] = b.Delete(ctx, name, backends.Any)
		_, _, calls["Previous"] = b.Previous(ctx, name)
		_, calls["Restore"] = b.Restore(ctx, name, backends.Any)
		var l backends.Lock
		if l, calls["Lock"] = b.Lock(ctx, name); l != nil {
			l.Unlock(ctx)
		}
		for call, err := range calls {
			if !errors.Is(err, backends.ErrInvalidName) {
				t.Errorf("%s(%q): %v, want ErrInvalidName", call, name, err)
			}
		}
	}
	after := walk(t, parent)
	if len(after) != len(before) {
		t.Fatalf("files changed: before %v, after %v", before, after)
	}
	for p, m := range before {
		if after[p] != m {
			t.Errorf("%s changed: %v -> %v", p, m, after[p])
		}
	}
}
