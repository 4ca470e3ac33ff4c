//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// TestRewriteFailureAfterRenameKeepsAValidSlot: a rewrite (temp file,
// rename over the target) that fails after its rename (at the removal of
// a layout-1 previous generation file, or at the folder fsync, which the
// real file system cannot be made to fail on demand: the step hook
// injects the error) must leave a record whose current slot holds a blob
// the caller had: never a record with no valid slot, which reads as a
// damaged file of the record's bytes. Cases: a Put over an oversized
// file (nothing to fall back to), a Restore over one, a Put that outgrows
// the slots (the old blob comes back), and Migrate (the blob stays).
func TestRewriteFailureAfterRenameKeepsAValidSlot(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("g", 6000)
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		call  func(b *file.Backend) error
		op    string
		want  []string // acceptable current blobs after the failure
	}{
		{
			name: "put over an oversized file",
			setup: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, "sessions", "s.sealed"), 1<<40); err != nil {
					t.Fatal(err)
				}
			},
			call: func(b *file.Backend) error {
				_, err := b.Put(ctx, "s", []byte("new"), backends.Any)
				return err
			},
			op: "put", want: []string{"new"},
		},
		{
			name: "restore over an oversized file",
			setup: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, "sessions", "s.sealed"), 1<<40); err != nil {
					t.Fatal(err)
				}
			},
			call: func(b *file.Backend) error {
				_, err := b.Restore(ctx, "s", backends.Any)
				return err
			},
			op: "restore", want: []string{"one"},
		},
		{
			name: "put that outgrows the slots",
			setup: func(t *testing.T, dir string) {
				b, err := file.New(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				_, v, err := b.Get(ctx, "s")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Put(ctx, "s", []byte("three"), v); err != nil {
					t.Fatal(err)
				}
			},
			call: func(b *file.Backend) error {
				_, err := b.Put(ctx, "s", []byte(big), backends.Any)
				return err
			},
			op: "put", want: []string{"three"},
		},
		{
			name:  "migrate",
			setup: removeFiles("vault.hdr", ".vault.hdr.prev"), // so that s is the one migrated
			call: func(b *file.Backend) error {
				_, err := b.Migrate(ctx)
				return err
			},
			op: "migrate", want: []string{"two"},
		},
		{
			name:  "migrate without a previous generation",
			setup: removeFiles("vault.hdr", ".vault.hdr.prev", "sessions/.s.sealed.prev"),
			call: func(b *file.Backend) error {
				_, err := b.Migrate(ctx)
				return err
			},
			op: "migrate", want: []string{"two"},
		},
	}
	for _, c := range cases {
		for _, step := range []file.Step{file.StepRemove, file.StepFsyncDir} {
			t.Run(c.name+"/"+string(step), func(t *testing.T) {
				dir := newV1Dir(t)
				if c.setup != nil {
					c.setup(t, dir)
				}
				var in injector
				b, err := file.New(dir, file.WithStepHook(in.hook))
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				in.arm(c.op, step, syscall.EIO)
				err = c.call(b)
				if in.fired.Load() == 0 {
					// A rewrite of a layout-2 record removes no
					// layout-1 file: no StepRemove to fail.
					if step == file.StepRemove {
						t.Skip("no removal step in this rewrite")
					}
					t.Fatalf("the %s step never ran", step)
				}
				if err == nil {
					t.Fatal("the call succeeded with a failing step")
				}
				got, _, gerr := b.Get(ctx, "s")
				if gerr != nil {
					t.Fatalf("Get after the failure: %v", gerr)
				}
				ok := false
				for _, w := range c.want {
					ok = ok || string(got) == w
				}
				if !ok {
					t.Fatalf("Get after the failure = %d bytes %.16q; want one of %q (error was: %v)", len(got), got, c.want, err)
				}
				// The record must stay writable in place.
				_, v, _ := b.Get(ctx, "s")
				if _, err := b.Put(ctx, "s", []byte("after"), v); err != nil {
					t.Fatalf("Put after the failure: %v", err)
				}
			})
		}
	}
}

// removeFiles returns a setup that removes files of a vault folder.
func removeFiles(files ...string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		for _, f := range files {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
