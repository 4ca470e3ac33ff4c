//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// TestKeptRecordSeesOtherWriters: a Backend keeps a record open, with
// what it knows of it, between its updates (reccache.go). Another
// Backend on the same folder (its own descriptors and flock(2) locks, as
// another process has) writes in between: an update, a write that fails
// midway, a rewrite that replaces the file, a Delete. Each must be seen
// by the first Backend's next Put: no stale version accepted, no write
// into a slot or a file that is no longer the one to write, no leftover
// bytes of the failed write kept beyond a shorter blob.
func TestKeptRecordSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "v")
	open := func(opts ...file.Option) *file.Backend {
		b, err := file.New(dir, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	a, b := open(), open()
	p := filepath.Join(dir, "sessions", "s.sealed")
	mustPut := func(be *file.Backend, blob string, v backends.Version) backends.Version {
		t.Helper()
		nv, err := be.Put(ctx, "s", []byte(blob), v)
		if err != nil {
			t.Fatal(err)
		}
		return nv
	}
	expect := func(cur, prev string) {
		t.Helper()
		if got, _, err := a.Get(ctx, "s"); err != nil || string(got) != cur {
			t.Fatalf("Get = %.20q, %v; want %.20q", got, err, cur)
		}
		if got, _, err := a.Previous(ctx, "s"); err != nil || string(got) != prev {
			t.Fatalf("Previous = %.20q, %v; want %.20q", got, err, prev)
		}
	}

	v := mustPut(a, "one", backends.Absent)
	v2 := mustPut(a, "two", v)
	// 1. An update by b: a's version is stale, b's is current.
	v3 := mustPut(b, "b three", v2)
	if _, err := a.Put(ctx, "s", []byte("a stale"), v2); !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("Put on a version another writer replaced: %v, want ErrConflict", err)
	}
	v4 := mustPut(a, "a four", v3)
	expect("a four", "b three")

	// 2. A write by b that fails midway (half its blob written, then
	// its header zeroed): a's next, shorter blob must leave zeros
	// beyond it, not the rest of b's bytes.
	long := strings.Repeat("x", 3000)
	failing := open(file.WithStepHook(func(_ context.Context, s file.StepInfo) error {
		if s.Op == "put" && s.Step == file.StepWrite {
			return errors.New("injected write failure")
		}
		return nil
	}))
	if _, err := failing.Put(ctx, "s", []byte(long), v4); err == nil {
		t.Fatal("the failing Put succeeded")
	}
	v5 := mustPut(a, "a five", v4)
	expect("a five", "a four")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("xxxx")) {
		t.Fatal("bytes of the failed write are left in the record after the next update")
	}

	// 3. b outgrows the slots: the record is replaced by a rename.
	big := strings.Repeat("B", 6000)
	v6 := mustPut(b, big, v5)
	if _, err := a.Put(ctx, "s", []byte("a stale"), v5); !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("Put on a version of the replaced record: %v, want ErrConflict", err)
	}
	v7 := mustPut(a, "a seven", v6)
	expect("a seven", big)

	// 4. b deletes the name.
	if err := b.Delete(ctx, "s", v7); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "s", []byte("a stale"), v7); !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("Put on the version of a deleted record: %v, want ErrConflict", err)
	}
	mustPut(a, "a again", backends.Absent)
	if got, _, err := b.Get(ctx, "s"); err != nil || string(got) != "a again" {
		t.Fatalf("b.Get after a recreated the name = %q, %v", got, err)
	}
}

// openFDs lists this process's open descriptors with their targets
// (Linux: /proc/self/fd), or nil where that is not available.
func openFDs(t *testing.T) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, target)
	}
	return out
}

// TestKeptRecordsBoundedAndClosed: the records kept open are bounded (as
// the lock files: MaxIdleLocks idle names), a Delete does not keep the
// removed file open (its blocks would stay allocated), and Close closes
// them all.
func TestKeptRecordsBoundedAndClosed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	ctx := context.Background()
	before := len(openFDs(t))
	b, err := file.New(filepath.Join(t.TempDir(), "v"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	names := 3 * file.MaxIdleLocks
	for i := range names {
		name := "s" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		v, err := b.Put(ctx, name, []byte("one"), backends.Absent)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Put(ctx, name, []byte("two"), v); err != nil {
			t.Fatal(err)
		}
	}
	records := func() (open, deleted int) {
		for _, target := range openFDs(t) {
			if strings.Contains(target, "/sessions/") && strings.Contains(target, ".sealed") {
				open++
				if strings.HasSuffix(target, " (deleted)") {
					deleted++
				}
			}
		}
		return
	}
	if n, _ := records(); n == 0 || n > file.MaxIdleLocks {
		t.Fatalf("%d records open after writing %d names; want 1 to %d", n, names, file.MaxIdleLocks)
	}
	v, _ := b.Put(ctx, "gone", []byte("one"), backends.Absent)
	v, _ = b.Put(ctx, "gone", []byte("two"), v)
	if err := b.Delete(ctx, "gone", v); err != nil {
		t.Fatal(err)
	}
	if _, d := records(); d != 0 {
		t.Fatalf("%d removed records still open after Delete", d)
	}
	b.Close()
	if n, _ := records(); n != 0 {
		t.Fatalf("%d records open after Close", n)
	}
	if after := len(openFDs(t)); after > before {
		t.Fatalf("%d descriptors open after Close, %d before New", after, before)
	}
}

// TestKeptRecordZeroesLongerBlobs: updates from the kept state (no read
// of the record) still zero what lies beyond a shorter blob in its slot:
// after two long blobs and two short ones, no byte of the long ones is
// left in the record.
func TestKeptRecordZeroesLongerBlobs(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	v := backends.Absent
	for _, blob := range []string{"first", strings.Repeat("a", 3000), strings.Repeat("b", 3000), "c", "d"} {
		var err error
		if v, err = b.Put(ctx, "s", []byte(blob), v); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(b.Path(), "sessions", "s.sealed"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("aaaa")) || bytes.Contains(data, []byte("bbbb")) {
		t.Fatal("bytes of an older, longer blob are left beyond a shorter one")
	}
	if got, _, err := b.Previous(ctx, "s"); err != nil || string(got) != "c" {
		t.Fatalf("Previous = %q, %v; want %q", got, err, "c")
	}
}
