package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// newFileVault creates a cheap vault in a real file backend, with hook
// (if not nil) as its step hook.
func newFileVault(t testing.TB, hook func(context.Context, file.StepInfo) error) (*Vault, *file.Backend) {
	t.Helper()
	var opts []file.Option
	if hook != nil {
		opts = append(opts, file.WithStepHook(hook))
	}
	b, err := file.New(filepath.Join(t.TempDir(), "vault"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	v, err := Create(context.Background(), b, cheap(testPass)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, b
}

// TestRotateKeyConcurrentProgress: with several writers in flight on a
// real file backend, progress is never called concurrently, done rises by
// one per call up to the total, every session ends under the new
// generation and opens with its value, and the writers did overlap.
func TestRotateKeyConcurrentProgress(t *testing.T) {
	const n = 60
	var inFlight, maxInFlight atomic.Int32
	hook := func(_ context.Context, s file.StepInfo) error {
		if s.Op != "put" || s.Name == backends.HeaderName {
			return nil
		}
		// An update in place: from its write lock to its fdatasync.
		switch s.Step {
		case file.StepLock:
			c := inFlight.Add(1)
			for m := maxInFlight.Load(); c > m && !maxInFlight.CompareAndSwap(m, c); m = maxInFlight.Load() {
			}
			// An in-place update is short: hold it a little, so that
			// writers that run concurrently are seen to overlap (a
			// serial re-seal still shows one in flight).
			time.Sleep(2 * time.Millisecond)
		case file.StepFsync:
			inFlight.Add(-1)
		}
		return nil
	}
	v, b := newFileVault(t, hook)
	for i := range n {
		seal(t, v, fmt.Sprintf("s%02d", i), fmt.Sprint("value ", i))
	}
	maxInFlight.Store(0)
	var calls []int
	var inside atomic.Int32
	err := v.RotateKey(context.Background(), func(done, total int) {
		if inside.Add(1) != 1 {
			t.Error("progress called concurrently")
		}
		defer inside.Add(-1)
		if total != n {
			t.Errorf("progress total %d, want %d", total, n)
		}
		calls = append(calls, done)
		time.Sleep(100 * time.Microsecond) // widen the window for a concurrent call
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != n {
		t.Fatalf("%d progress calls, want %d", len(calls), n)
	}
	for i, d := range calls {
		if d != i+1 {
			t.Fatalf("progress calls %v: not rising by one", calls)
		}
	}
	if g := maxInFlight.Load(); g < 2 || g > resealWorkers {
		t.Errorf("at most %d session writes in flight, want 2..%d", g, resealWorkers)
	}
	if in := v.Info(); len(in.Generations) != 1 || in.Current != 2 {
		t.Fatalf("after rotation: %+v", in)
	}
	v2 := mustOpen(t, b, cheap(testPass)...)
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		if g := sessionGen(t, b, name); g != 2 {
			t.Fatalf("%s under generation %d", name, g)
		}
		if got := open(t, v2, name); got != fmt.Sprint("value ", i) {
			t.Fatalf("%s = %q", name, got)
		}
	}
}

// TestRotateKeyFirstErrorStops: a session write that fails (EIO at its
// fsync, injected through the file backend's step hook) stops the
// rotation: no session is started after it but the few already picked up
// by other writers, the error returned is that EIO (not the cancellation
// of the writes in flight), the header keeps both generations, every
// session still opens, and a rerun completes.
func TestRotateKeyFirstErrorStops(t *testing.T) {
	const n = 80
	var (
		armed    atomic.Bool
		failed   atomic.Bool
		mu       sync.Mutex
		started  = map[string]bool{}
		afterErr []string
	)
	hook := func(_ context.Context, s file.StepInfo) error {
		if !armed.Load() || s.Name == backends.HeaderName {
			return nil
		}
		if s.Op == "get" && s.Step == file.StepRead {
			mu.Lock()
			if !started[s.Name] && failed.Load() {
				afterErr = append(afterErr, s.Name)
			}
			started[s.Name] = true
			mu.Unlock()
		}
		if s.Op == "put" && s.Name == "s20" && s.Step == file.StepFsync {
			failed.Store(true)
			return syscall.EIO
		}
		return nil
	}
	v, b := newFileVault(t, hook)
	for i := range n {
		seal(t, v, fmt.Sprintf("s%02d", i), fmt.Sprint("value ", i))
	}
	armed.Store(true)
	var calls atomic.Int32
	err := v.RotateKey(context.Background(), func(done, total int) { calls.Add(1) })
	armed.Store(false)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), `"s20"`) {
		t.Fatalf("RotateKey with a failing write: %v, want the EIO of s20", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatalf("RotateKey returned a cancellation, not the first error: %v", err)
	}
	if len(afterErr) > resealWorkers-1 {
		t.Errorf("%d sessions started after the failure (%v), want at most %d (already picked up)", len(afterErr), afterErr, resealWorkers-1)
	}
	if c := calls.Load(); c >= n {
		t.Errorf("%d progress calls after a failure, want fewer than %d", c, n)
	}
	if in := v.Info(); !in.Rotating {
		t.Fatalf("after a failed rotation: %+v, want both generations", in)
	}
	v2 := mustOpen(t, b, cheap(testPass)...)
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		if got := open(t, v2, name); got != fmt.Sprint("value ", i) {
			t.Fatalf("%s = %q after the failed rotation", name, got)
		}
	}
	if err := v.RotateKey(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if in := v.Info(); in.Rotating || in.Current != 2 {
		t.Fatalf("after the rerun: %+v", in)
	}
	for i := range n {
		if g := sessionGen(t, b, fmt.Sprintf("s%02d", i)); g != 2 {
			t.Fatalf("s%02d under generation %d after the rerun", i, g)
		}
	}
}

// TestRotateKeyCancelled: a ctx cancelled mid-pass stops the workers
// with an error matching context.Canceled; a rerun completes.
func TestRotateKeyCancelled(t *testing.T) {
	const n = 40
	v, b := newVault(t)
	for i := range n {
		seal(t, v, fmt.Sprintf("s%02d", i), fmt.Sprint("value ", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	err := v.RotateKey(ctx, func(done, total int) {
		if done == 10 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled RotateKey: %v", err)
	}
	if err := v.RotateKey(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if g := sessionGen(t, b, fmt.Sprintf("s%02d", i)); g != 2 {
			t.Fatalf("s%02d under generation %d", i, g)
		}
	}
}

// TestRotateKeyStaleSlotKey: a Vault that remembers a passphrase slot's
// key from before another Vault changed that passphrase (same slot id,
// new salt) must not re-wrap the slot under the stale key, which would
// leave a slot its passphrase no longer opens. With a stale passphrase it
// refuses before any change; with the same passphrase (new salt) it
// derives the key again and the rotation leaves every slot opening.
func TestRotateKeyStaleSlotKey(t *testing.T) {
	ctx := context.Background()
	ks := newKeyStore()
	v, b := newVault(t, cheap(testPass, WithKeyStore(ks))...)
	seal(t, v, "a", "x")
	other := mustOpen(t, b, cheap(testPass, WithKeyStore(ks))...)
	if err := other.RotateKey(ctx, nil); err != nil { // remembers the passphrase slot's key
		t.Fatal(err)
	}

	const newPass = "a different passphrase"
	if err := v.ChangePassphrase(ctx, []byte(newPass), testParams); err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := b.Get(ctx, backends.HeaderName)
	err := other.RotateKey(ctx, nil)
	wantErr(t, err, ErrWrongKey, "rotation with a stale passphrase")
	if hdr2, _, _ := b.Get(ctx, backends.HeaderName); !bytes.Equal(hdr, hdr2) {
		t.Fatal("a refused rotation changed the header")
	}
	if got := open(t, mustOpen(t, b, cheap(newPass)...), "a"); got != "x" {
		t.Fatalf("a = %q", got)
	}

	// The same passphrase set again: new salt, same words.
	if err := v.ChangePassphrase(ctx, []byte(testPass), testParams); err != nil {
		t.Fatal(err)
	}
	if err := other.RotateKey(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := open(t, mustOpen(t, b, cheap(testPass)...), "a"); got != "x" {
		t.Fatalf("after the rotation, with the passphrase: a = %q", got)
	}
	if got := open(t, mustOpen(t, b, WithKeyStore(ks), WithInsecureKDFForTesting()), "a"); got != "x" {
		t.Fatalf("after the rotation, with the keychain: a = %q", got)
	}
}
