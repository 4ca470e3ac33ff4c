//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// walk returns every path under dir (relative) with its mode.
func walk(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// noTemps fails if a temp file is left anywhere under dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	for p := range walk(t, dir) {
		if strings.Contains(filepath.Base(p), ".tmp-") {
			t.Errorf("temp file left behind: %s", p)
		}
	}
}

func TestLayoutAndModes(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	v, err := b.Put(ctx, backends.HeaderName, []byte("hdr"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, backends.HeaderName, []byte("hdr2"), v); err != nil {
		t.Fatal(err)
	}
	s1, err := b.Put(ctx, "bot-1", []byte("s1"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "bot-1", []byte("s2"), s1); err != nil {
		t.Fatal(err)
	}
	l, err := b.Lock(ctx, "bot-1")
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock(ctx)

	got := walk(t, b.Path())
	want := map[string]fs.FileMode{
		".":                     fs.ModeDir | 0o700,
		"vault.hdr":             0o600,
		"sessions":              fs.ModeDir | 0o700,
		"sessions/bot-1.sealed": 0o600,
		"locks":                 fs.ModeDir | 0o700,
		"locks/..vault.wlock":   0o600,
		"locks/.bot-1.wlock":    0o600,
		"locks/bot-1.lock":      0o600,
	}
	for p, m := range want {
		if got[p] != m {
			t.Errorf("%s: mode %v, want %v", p, got[p], m)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %s", p)
		}
	}
	// A record: two slots of one 4 KiB block each, both generations in it.
	for _, p := range []string{"vault.hdr", "sessions/bot-1.sealed"} {
		data, err := os.ReadFile(filepath.Join(b.Path(), p))
		if err != nil || len(data) != 8192 || string(data[:8]) != "SVLT-REC" || string(data[4096:4104]) != "SVLT-REC" {
			t.Errorf("%s: %d bytes, %v; want a record of two 4 KiB slots", p, len(data), err)
		}
	}
	cur, _, err := b.Get(ctx, "bot-1")
	if err != nil || string(cur) != "s2" {
		t.Errorf("Get = %q, %v; want s2", cur, err)
	}
	prev, _, err := b.Previous(ctx, "bot-1")
	if err != nil || string(prev) != "s1" {
		t.Errorf("Previous = %q, %v; want s1", prev, err)
	}
}

// TestUmask checks modes under umask 000 (nothing masked) and 077 and
// 0277 (owner bits masked too): files are 0600 and folders 0700 anyway.
func TestUmask(t *testing.T) {
	for _, mask := range []int{0o000, 0o077, 0o277} {
		t.Run(fmt.Sprintf("%03o", mask), func(t *testing.T) {
			// The parent is made before the umask changes: under umask
			// 000 it would be 0777, an ancestor New refuses.
			parent := t.TempDir()
			old := syscall.Umask(mask)
			defer syscall.Umask(old)
			ctx := context.Background()
			b, err := file.New(filepath.Join(parent, "vault"))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			v, err := b.Put(ctx, "s", []byte("x"), backends.Absent)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Put(ctx, "s", []byte("y"), v); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Put(ctx, backends.HeaderName, []byte("h"), backends.Absent); err != nil {
				t.Fatal(err)
			}
			l, err := b.Lock(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			l.Unlock(ctx)
			for p, m := range walk(t, b.Path()) {
				want := fs.FileMode(0o600)
				if m.IsDir() {
					want = fs.ModeDir | 0o700
				}
				if m != want {
					t.Errorf("umask %03o: %s has mode %v, want %v", mask, p, m, want)
				}
			}
		})
	}
}

func TestStrayFilesIgnored(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	if _, err := b.Put(ctx, "real", []byte("r"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	sess := filepath.Join(b.Path(), "sessions")
	for _, name := range []string{"README", "x.txt", ".hidden.sealed", "bad name.sealed", ".real.sealed.tmp-0000000000000000", "-x.sealed", ".sealed", ".vault.sealed"} {
		if err := os.WriteFile(filepath.Join(sess, name), []byte("stray"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(sess, "dir.sealed"), 0o700)
	os.Symlink("real.sealed", filepath.Join(sess, "link.sealed"))
	os.WriteFile(filepath.Join(b.Path(), "notes.txt"), []byte("stray"), 0o600)
	names, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A folder or a symlink under a session's file name is not stray: it
	// is listed, so that whoever walks the vault meets it, and Get
	// refuses it as unsafe instead of following it.
	if !slices.Equal(names, []string{"dir", "link", "real"}) {
		t.Fatalf("List = %q, want [dir link real]", names)
	}
	for _, name := range []string{"dir", "link"} {
		if _, _, err := b.Get(ctx, name); !errors.Is(err, backends.ErrPermission) {
			t.Errorf("Get(%q) = %v, want ErrPermission", name, err)
		}
	}
}

// TestFolderSwappedAfterNew: once open, the backend writes through its
// folder descriptors; a symbolic link swapped in at the folder's path
// afterwards redirects nothing.
func TestFolderSwappedAfterNew(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	parent := filepath.Dir(b.Path())
	moved := filepath.Join(parent, "moved")
	elsewhere := filepath.Join(parent, "elsewhere")
	if err := os.MkdirAll(filepath.Join(elsewhere, "sessions"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(b.Path(), moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, b.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "s", []byte("x"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(moved, "sessions", "s.sealed")); err != nil {
		t.Errorf("the write did not land in the opened folder: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(elsewhere, "sessions")); len(ents) != 0 {
		t.Errorf("the write followed the swapped-in link: %v", ents)
	}
}

// TestDamagedSlot damages the current slot on disk, as a bad sector or a
// torn write would: the checksums refuse it, so the blob before it is
// current again (whole, with the version it had), and nothing older is
// left to be a previous generation. Damage to both slots reads as a
// damaged blob, which the vault refuses as corrupt.
func TestDamagedSlot(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	v1, _ := b.Put(ctx, "s", []byte("one"), backends.Absent)
	v2, _ := b.Put(ctx, "s", []byte("two"), v1)
	p := filepath.Join(b.Path(), "sessions", "s.sealed")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cur := 4096 // "two" went into slot 1
	if string(data[cur+64:cur+67]) != "two" {
		t.Fatalf("slot 1 does not hold the current blob: %q", data[cur+64:cur+67])
	}
	data[cur+65] ^= 1
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, gv, err := b.Get(ctx, "s")
	if err != nil || string(got) != "one" || gv != v1 || gv == v2 {
		t.Fatalf("Get of a record with a damaged current slot = %q, %q, %v; want %q, %q", got, gv, err, "one", v1)
	}
	if _, _, err := b.Previous(ctx, "s"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Previous: %v, want ErrNotFound", err)
	}
	if _, err := b.Restore(ctx, "s", gv); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Restore: %v, want ErrNotFound", err)
	}
	v3, err := b.Put(ctx, "s", []byte("three"), gv)
	if err != nil {
		t.Fatal(err)
	}
	if got, gv, err := b.Get(ctx, "s"); err != nil || string(got) != "three" || gv != v3 {
		t.Fatalf("after the next Put: %q, %q, %v", got, gv, err)
	}
	// Both slots damaged: the file's bytes are the blob, as a damaged
	// layout-1 file's were; a Put on its version replaces it.
	data, _ = os.ReadFile(p)
	data[64] ^= 1
	data[4096+64] ^= 1
	os.WriteFile(p, data, 0o600)
	got, gv, err = b.Get(ctx, "s")
	if err != nil || len(got) != len(data) {
		t.Fatalf("Get of a record with no valid slot = %d bytes, %v; want the file's %d bytes", len(got), err, len(data))
	}
	if _, err := b.Put(ctx, "s", []byte("four"), gv); err != nil {
		t.Fatal(err)
	}
	if got, _, err := b.Get(ctx, "s"); err != nil || string(got) != "four" {
		t.Fatalf("after replacing the damaged file: %q, %v", got, err)
	}
	// Delete removes the record.
	_, gv, _ = b.Get(ctx, "s")
	if err := b.Delete(ctx, "s", gv); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(b.Path(), "sessions")); len(ents) != 0 {
		t.Fatalf("files left after Delete: %v", ents)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	if _, err := b.Put(ctx, "s", []byte("x"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	// A Lock waiting for a held lock ends when the backend closes.
	held, err := b.Lock(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := b.Lock(ctx, "s")
		waiting <- err
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("waiting Lock after Close: %v, want ErrUnavailable", err)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Errorf("Unlock after Close: %v", err)
	}
	if _, _, err := b.Get(ctx, "s"); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get after Close: %v, want ErrUnavailable", err)
	}
	if _, err := b.Put(ctx, "s", []byte("y"), backends.Any); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Put after Close: %v, want ErrUnavailable", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSameFolderTwoBackends(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "v")
	a, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := a.Put(ctx, "s", []byte("from a"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	got, gv, err := b.Get(ctx, "s")
	if err != nil || !bytes.Equal(got, []byte("from a")) || gv != v {
		t.Fatalf("b.Get = %q, %q, %v", got, gv, err)
	}
	if _, err := a.Put(ctx, "s", []byte("a again"), v); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "s", []byte("b stale"), v); !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("stale Put through the second backend: %v, want ErrConflict", err)
	}
}
