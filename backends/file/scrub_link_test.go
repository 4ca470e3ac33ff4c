//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
)

// A temp name that is a hard link of the live file (what a layout-1 writer
// killed between its link and its rename leaves) is removed by
// DropPrevious without zeroing the live file through it: the current blob
// and the header still read whole.
func TestDropPreviousKeepsHardLinkedLiveFile(t *testing.T) {
	b, dir := newLinkTestBackend(t)
	ctx := context.Background()
	for _, c := range []struct{ name, path, temp string }{
		{"x", filepath.Join(dir, "sessions", "x.sealed"), filepath.Join(dir, "sessions", ".x.sealed.tmp-0123456789abcdef")},
		{backends.HeaderName, filepath.Join(dir, "vault.hdr"), filepath.Join(dir, ".vault.hdr.tmp-0123456789abcdef")},
	} {
		blob := bytes.Repeat([]byte("C"), 100) // a layout-1 current blob
		if err := os.WriteFile(c.path, blob, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(c.path, c.temp); err != nil {
			t.Fatal(err)
		}
		if err := b.DropPrevious(ctx, c.name); err != nil {
			t.Fatalf("%s: DropPrevious: %v", c.name, err)
		}
		if _, err := os.Lstat(c.temp); !os.IsNotExist(err) {
			t.Errorf("%s: temp link still there: %v", c.name, err)
		}
		got, _, err := b.Get(ctx, c.name)
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("%s: after DropPrevious: %q, %v; want the current blob whole", c.name, got, err)
		}
	}
}

// A record that another name hard-links (a copy someone made with cp -al
// or ln) is rewritten, not updated in place: the other name keeps the
// bytes it had, and the record is a file of its own again.
func TestPutHardLinkedRecordLeavesTheLinkAlone(t *testing.T) {
	b, dir := newLinkTestBackend(t)
	ctx := context.Background()
	v1, err := b.Put(ctx, "x", bytes.Repeat([]byte("1"), 200), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := b.Put(ctx, "x", bytes.Repeat([]byte("2"), 200), v1) // the record is kept open now
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "sessions", "x.sealed")
	copyPath := filepath.Join(t.TempDir(), "copy")
	if err := os.Link(rec, copyPath); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "x", bytes.Repeat([]byte("3"), 200), v2); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a Put changed the bytes of a hard-linked copy of the record")
	}
	got, _, err := b.Get(ctx, "x")
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("3"), 200)) {
		t.Fatalf("Get after the Put: %.8q, %v", got, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(rec, &st); err != nil || st.Nlink != 1 {
		t.Fatalf("record links: %d, %v; want 1", st.Nlink, err)
	}
}

// newLinkTestBackend returns a Backend on a fresh folder, closed when t
// ends, and the folder.
func newLinkTestBackend(t *testing.T) (*Backend, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v")
	b, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}
