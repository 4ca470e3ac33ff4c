//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// TestLockExcludesGoroutines: goroutines of one Backend share its lock
// file's descriptor, on which flock(2) alone would not exclude them; and
// a second Backend on the same folder (its own descriptor) is excluded
// by flock. At most one holder is ever inside.
func TestLockExcludesGoroutines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	b1, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	b2, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	ctx := context.Background()
	const workers, rounds = 6, 150
	var inside, max, total atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		b := b1
		if w%3 == 2 {
			b = b2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := b.Lock(ctx, "s")
				if err != nil {
					errs <- err
					return
				}
				n := inside.Add(1)
				for m := max.Load(); n > m && !max.CompareAndSwap(m, n); m = max.Load() {
				}
				total.Add(1)
				runtime.Gosched()
				inside.Add(-1)
				if err := l.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if max.Load() != 1 || total.Load() != workers*rounds {
		t.Fatalf("%d holders at once (want 1), %d of %d rounds", max.Load(), total.Load(), workers*rounds)
	}
}

// TestLockWaiterInProcess: a Lock waiting for a holder in the same
// Backend ends with ErrLocked when its ctx does, gets the lock once the
// holder unlocks, and an Unlock twice is harmless.
func TestLockWaiterInProcess(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	held, err := b.Lock(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = b.Lock(tctx, "s")
	cancel()
	if !errors.Is(err, backends.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held name: %v, want ErrLocked and DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := b.Lock(ctx, "s")
		if err == nil {
			err = l.Unlock(ctx)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while the lock was held", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// lockFDs returns the descriptors of this process open on files in the
// locks folder of the vault at dir, by lock file name (Linux: read from
// /proc/self/fd).
func lockFDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "locks") + "/"
	out := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir used, closed by now
		}
		if name, ok := strings.CutPrefix(target, prefix); ok {
			out[name]++
		}
	}
	return out
}

// TestLockFilesKept: repeated Locks of a name reuse one descriptor; the
// descriptors of idle names are bounded by MaxIdleLocks, most recently
// used kept; Close closes the idle ones at once and a held one at its
// Unlock.
func TestLockFilesKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for range 50 {
		l, err := b.Lock(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		l.Unlock(ctx)
	}
	if fds := lockFDs(t, dir); fds["s.lock"] != 1 || file.OpenLockFiles(b) != 1 {
		t.Fatalf("after 50 Locks of one name: %v open (cache says %d), want s.lock once", fds, file.OpenLockFiles(b))
	}
	names := 3 * file.MaxIdleLocks
	for i := range names {
		l, err := b.Lock(ctx, fmt.Sprintf("n%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		l.Unlock(ctx)
	}
	fds := lockFDs(t, dir)
	delete(fds, ".write.lock")
	if len(fds) != file.MaxIdleLocks || file.OpenLockFiles(b) != file.MaxIdleLocks {
		t.Fatalf("after Locks of %d names: %d lock files open (cache says %d), want %d", names, len(fds), file.OpenLockFiles(b), file.MaxIdleLocks)
	}
	for i := names - file.MaxIdleLocks; i < names; i++ {
		if n := fmt.Sprintf("n%03d.lock", i); fds[n] != 1 {
			t.Errorf("%s, among the %d most recently used, is not open", n, file.MaxIdleLocks)
		}
	}

	held, err := b.Lock(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if fds := lockFDs(t, dir); len(fds) != 1 || fds["held.lock"] != 1 {
		t.Fatalf("after Close with one lock held: %v open, want held.lock only", fds)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if fds := lockFDs(t, dir); len(fds) != 0 {
		t.Fatalf("after Close and the last Unlock: %v still open", fds)
	}
}

// TestLockCachedAcrossProcesses: a lock file kept open between Locks
// still excludes other processes both ways, and a lock file removed and
// re-created by another process is followed (the Lock opens the new file
// rather than locking the unlinked one, which nobody else sees).
func TestLockCachedAcrossProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	tryChild := func() string {
		t.Helper()
		out, err := childCmd(t, "try-lock", dir, 200).Output()
		if err != nil {
			t.Fatalf("try-lock child: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	for i := range 2 {
		l, err := b.Lock(ctx, "refresh")
		if err != nil {
			t.Fatal(err)
		}
		if got := tryChild(); got != "busy" {
			t.Fatalf("round %d: another process got a lock this one holds: %q", i, got)
		}
		l.Unlock(ctx)
		if got := tryChild(); got != "locked" {
			t.Fatalf("round %d: another process could not take a released lock: %q", i, got)
		}
	}

	// Remove the lock file this Backend keeps open; another process
	// creates a new one and holds it.
	if err := os.Remove(filepath.Join(dir, "locks", "refresh.lock")); err != nil {
		t.Fatal(err)
	}
	cmd := childCmd(t, "hold-lock", dir, 0)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	l, err := b.Lock(tctx, "refresh")
	cancel()
	if err == nil {
		l.Unlock(ctx)
		t.Fatal("Lock succeeded on the removed lock file while another process holds the new one")
	}
	if !errors.Is(err, backends.ErrLocked) {
		t.Fatalf("Lock: %v, want ErrLocked", err)
	}
}
