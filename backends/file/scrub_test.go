//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// holder keeps files open as an onlooker would, to read the bytes of each
// after the backend removed or replaced it: the bytes its blocks hold.
type holder struct {
	t     *testing.T
	files map[string]*os.File
}

func hold(t *testing.T, dir string, rel ...string) *holder {
	t.Helper()
	h := &holder{t: t, files: map[string]*os.File{}}
	for _, r := range rel {
		f, err := os.Open(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		h.files[r] = f
	}
	return h
}

// zeroed fails unless every file held is gone from its path and holds
// only zeros, as many as it had bytes.
func (h *holder) zeroed(what string) {
	h.t.Helper()
	for r, f := range h.files {
		fi, err := f.Stat()
		if err != nil {
			h.t.Fatal(err)
		}
		data := make([]byte, fi.Size())
		if _, err := f.ReadAt(data, 0); err != nil {
			h.t.Fatal(err)
		}
		if fi.Size() == 0 {
			h.t.Errorf("%s: %s was truncated, not overwritten", what, r)
		}
		if i := bytes.IndexFunc(data, func(r rune) bool { return r != 0 }); i >= 0 {
			h.t.Errorf("%s: %s still holds its bytes after its removal (%q at %d)", what, r, data[i:min(i+16, len(data))], i)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink != 0 {
			h.t.Errorf("%s: %s is still linked", what, r)
		}
	}
}

// TestRemovedCopiesZeroed: every file the backend removes or renames over
// that held sealed bytes (temp files and layout-1 previous generations
// that DropPrevious removes, the record a growing Put replaces, a
// deleted record, a layout-1 file and its previous generation moved to
// layout 2 by a Put or by Migrate) is overwritten with zeros, so that
// its freed blocks no longer hold them (on a file system that writes in
// place: see SECURITY.md). Read through descriptors opened before.
func TestRemovedCopiesZeroed(t *testing.T) {
	ctx := context.Background()
	t.Run("drop previous", func(t *testing.T) {
		b := newBackend(t)
		v, _ := b.Put(ctx, "s", []byte("one"), backends.Absent)
		b.Put(ctx, "s", []byte("two"), v)
		for _, p := range []string{"sessions/.s.sealed.tmp-0123456789abcdef", "sessions/.s.sealed.prev"} {
			if err := os.WriteFile(filepath.Join(b.Path(), p), []byte("an old sealed copy"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		h := hold(t, b.Path(), "sessions/.s.sealed.tmp-0123456789abcdef", "sessions/.s.sealed.prev")
		if err := b.DropPrevious(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		h.zeroed("DropPrevious")
	})
	t.Run("growing put", func(t *testing.T) {
		b := newBackend(t)
		v, _ := b.Put(ctx, "s", []byte("one"), backends.Absent)
		v, _ = b.Put(ctx, "s", []byte("two"), v)
		h := hold(t, b.Path(), "sessions/s.sealed")
		if _, err := b.Put(ctx, "s", bytes.Repeat([]byte("g"), 9000), v); err != nil {
			t.Fatal(err)
		}
		h.zeroed("a Put that outgrew the record")
		if got, _, err := b.Previous(ctx, "s"); err != nil || string(got) != "two" {
			t.Fatalf("Previous after the growing Put = %q, %v", got, err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		b := newBackend(t)
		v, _ := b.Put(ctx, "s", []byte("one"), backends.Absent)
		v, _ = b.Put(ctx, "s", []byte("two"), v)
		h := hold(t, b.Path(), "sessions/s.sealed")
		if err := b.Delete(ctx, "s", v); err != nil {
			t.Fatal(err)
		}
		h.zeroed("Delete")
	})
	t.Run("layout 1 put", func(t *testing.T) {
		dir := newV1Dir(t)
		h := hold(t, dir, "sessions/s.sealed", "sessions/.s.sealed.prev")
		b, err := file.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Put(ctx, "s", []byte("three"), backends.Any); err != nil {
			t.Fatal(err)
		}
		h.zeroed("the first Put of a layout-1 name")
	})
	t.Run("migrate", func(t *testing.T) {
		dir := newV1Dir(t)
		h := hold(t, dir, "sessions/s.sealed", "sessions/.s.sealed.prev", "vault.hdr", ".vault.hdr.prev")
		b, err := file.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		h.zeroed("Migrate")
		if got, _, err := b.Previous(ctx, "s"); err != nil || string(got) != "one" {
			t.Fatalf("Previous after Migrate = %q, %v", got, err)
		}
	})
}

// TestReadersRaceRemovals: lock-free readers racing a writer that keeps
// replacing the record (a Put that outgrows it), deleting it and
// creating it again, all of which overwrite the old file with zeros
// after its removal, only ever get a whole blob that was written, or
// not found: never the zeros of a file removed while they read it.
func TestReadersRaceRemovals(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	blob := func(i int) []byte {
		// Sizes that outgrow the record now and then.
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 100+(i%4)*3000)
		copy(p, fmt.Sprintf("%08d", i))
		return p
	}
	var done atomic.Bool
	var reads, fails atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				got, _, err := b.Get(ctx, "s")
				if errors.Is(err, backends.ErrNotFound) {
					continue
				}
				if err != nil {
					fails.Add(1)
					t.Errorf("Get: %v", err)
					return
				}
				var i int
				fmt.Sscanf(string(got[:min(8, len(got))]), "%d", &i)
				if !bytes.Equal(got, blob(i)) {
					fails.Add(1)
					t.Errorf("Get returned bytes that were never a blob (%d bytes, %q...)", len(got), strings.ToValidUTF8(string(got[:min(8, len(got))]), "?"))
					return
				}
				reads.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(700 * time.Millisecond)
	v := backends.Absent
	i := 0
	for ; time.Now().Before(deadline) && fails.Load() == 0; i++ {
		var err error
		if i%9 == 8 {
			if err = b.Delete(ctx, "s", v); err != nil {
				t.Fatal(err)
			}
			v = backends.Absent
			continue
		}
		if i%3 == 0 {
			// A fresh, small record, so that the next blobs outgrow it.
			if v != backends.Absent {
				if err = b.Delete(ctx, "s", v); err != nil {
					t.Fatal(err)
				}
			}
			v = backends.Absent
		}
		if v, err = b.Put(ctx, "s", blob(i), v); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d writes, %d reads, %d bad", i, reads.Load(), fails.Load())
}
