//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
)

// TestDropPreviousLeftovers plants what a crashed write leaves behind
// (a temp file and a temp link, for the header and for a session) and
// checks that DropPrevious removes them with the previous generation,
// and nothing else: not the current file, not the files of a name that
// starts the same way, not a stray file.
func TestDropPreviousLeftovers(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	dir := b.Path()
	for _, name := range []string{backends.HeaderName, "s", "s.sealed.tmp-0123456789abcdef"} {
		v, err := b.Put(ctx, name, []byte("one "+name), backends.Absent)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Put(ctx, name, []byte("two "+name), v); err != nil {
			t.Fatal(err)
		}
	}
	plant := []string{
		".vault.hdr.tmp-00000000000000aa",
		".vault.hdr.tmp-ffffffffffffffff",
		"sessions/.s.sealed.tmp-0123456789abcdef",
	}
	keep := []string{
		"vault.hdr",
		"sessions/s.sealed",
		"sessions/s.sealed.tmp-0123456789abcdef.sealed",
		"sessions/.s.sealed.tmp-0123456789abcdef.sealed.prev",
		"sessions/.s.sealed.tmp-0123456789abcdef.sealed.tmp-1111111111111111",
		"sessions/.s.sealed.tmp-short",
		".vault.hdr.tmp-XYZ0000000000000",
	}
	// Layout 2 keeps the previous generation in the record; a folder
	// moved from layout 1 may still hold ".prev" files: planted too.
	plant = append(plant, ".vault.hdr.prev", "sessions/.s.sealed.prev")
	for _, p := range append(plant, keep[3:]...) {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("old copy"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{backends.HeaderName, "s"} {
		if err := b.DropPrevious(ctx, name); err != nil {
			t.Fatalf("DropPrevious(%q): %v", name, err)
		}
	}
	for _, p := range append(plant, ".vault.hdr.prev", "sessions/.s.sealed.prev") {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after DropPrevious (%v)", p, err)
		}
	}
	for _, p := range keep {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if blob, _, err := b.Get(ctx, "s"); err != nil || string(blob) != "two s" {
		t.Errorf("Get(s) = %q, %v", blob, err)
	}
	for _, name := range []string{backends.HeaderName, "s"} {
		if prev, _, err := b.Previous(ctx, name); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("Previous(%q) after DropPrevious = %q, %v; want ErrNotFound", name, prev, err)
		}
	}
	if prev, _, err := b.Previous(ctx, "s.sealed.tmp-0123456789abcdef"); err != nil || string(prev) != "one s.sealed.tmp-0123456789abcdef" {
		t.Errorf("the previous generation of another name = %q, %v", prev, err)
	}
}
