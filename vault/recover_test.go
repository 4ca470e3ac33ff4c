package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

func TestRecover(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	seal(t, v, "a", "first")
	seal(t, v, "a", "second")

	// An intact session is left alone.
	if restored, err := v.Recover(ctx, "a"); err != nil || restored {
		t.Fatalf("Recover of an intact session: %v, %v", restored, err)
	}
	// Damage the current blob (a flipped bit in storage).
	blob, ver, _ := b.Get(ctx, "a")
	blob[len(blob)-1] ^= 1
	if _, err := b.Put(ctx, "a", blob, ver); err != nil {
		t.Fatal(err)
	}
	_, _, err := v.Store("a").Open(ctx)
	wantErr(t, err, ErrCorrupt, "damaged session")
	restored, err := v.Recover(ctx, "a")
	if err != nil || !restored {
		t.Fatalf("Recover: %v, %v", restored, err)
	}
	// The previous generation is the damaged blob's predecessor: the
	// intact "second".
	if got := open(t, v, "a"); got != "second" {
		t.Fatalf("recovered %q", got)
	}

	// Damage a session written once: its previous generation is
	// the intact first write... once the damaged one is stored.
	seal(t, v, "once", "x")
	blob, ver, _ = b.Get(ctx, "once")
	blob[20] ^= 1
	if _, err := b.Put(ctx, "once", blob, ver); err != nil {
		t.Fatal(err)
	}
	// Now "once" has a previous generation (the intact one).
	if restored, err := v.Recover(ctx, "once"); err != nil || !restored {
		t.Fatalf("Recover once: %v, %v", restored, err)
	}
	seal(t, v, "fresh", "x")
	if err := b.Delete(ctx, "fresh", backends.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Recover(ctx, "fresh"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Recover without a previous generation: %v", err)
	}
}

// noRecover hides the memory backend's Recoverer.
type noRecover struct{ backends.Backend }

func TestRecoverUnsupported(t *testing.T) {
	_, b := newVault(t)
	v := mustOpen(t, noRecover{b}, cheap(testPass)...)
	if _, err := v.Recover(context.Background(), "a"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Recover without Recoverer: %v", err)
	}
}

func TestStoreLock(t *testing.T) {
	ctx := context.Background()
	_, b := newVault(t)
	// Over a backend without a Locker, two Vaults in one process still
	// exclude each other.
	plain := noRecover{b}
	v1 := mustOpen(t, plain, cheap(testPass)...)
	v2 := mustOpen(t, plain, cheap(testPass)...)
	l, err := v1.Store("a").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := v2.Store("a").Lock(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: %v", err)
	}
	if l2, err := v2.Store("b").Lock(ctx); err != nil {
		t.Fatal("another name is blocked:", err)
	} else {
		l2.Unlock(ctx)
	}
	got := make(chan error)
	go func() {
		l, err := v2.Store("a").Lock(ctx)
		if err == nil {
			l.Unlock(ctx)
		}
		got <- err
	}()
	l.Unlock(ctx)
	l.Unlock(ctx) // no-op
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentSealOpenClose(t *testing.T) {
	ctx := context.Background()
	v, _ := newVault(t)
	seal(t, v, "a", "x")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := v.SealSession("a", []byte("x")); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
				if _, _, err := v.Store("a").Open(ctx); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	v.Close()
	wg.Wait()
}

// TestConcurrentHeaderChanges runs header changes (passphrase, slots,
// rotation) alongside seals and opens, for the race detector.
func TestConcurrentHeaderChanges(t *testing.T) {
	ctx := context.Background()
	ks := newKeyStore()
	v, b := newVault(t, cheap(testPass, WithKeyStore(ks))...)
	other := mustOpen(t, b, cheap(testPass, WithKeyStore(ks))...)
	seal(t, v, "a", "x")
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if err := f(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	run(func() error { return v.ChangePassphrase(ctx, []byte(testPass), testParams) })
	run(func() error { return other.RotateKey(ctx, nil) })
	run(func() error {
		id, err := v.AddKeychainSlot(ctx, ks)
		if err != nil {
			return err
		}
		return other.RemoveSlot(ctx, id)
	})
	run(func() error {
		_, err := other.Store("a").Seal(ctx, []byte("y"), backends.Any)
		return err
	})
	run(func() error {
		_, _, err := v.Store("a").Open(ctx)
		_ = v.Info()
		return err
	})
	wg.Wait()
	if got := open(t, mustOpen(t, b, cheap(testPass)...), "a"); got != "y" {
		t.Fatalf("a = %q", got)
	}
}

// TestErrorsCarryNoSecrets: error messages from failing paths never
// contain a passphrase, a key or plaintext.
func TestErrorsCarryNoSecrets(t *testing.T) {
	ctx := context.Background()
	const secretPass = "hunter2-SECRET-pass"
	v, b := newVault(t, cheap(secretPass)...)
	seal(t, v, "a", "PLAINTEXT-SECRET")
	var errs []error
	_, err := Open(ctx, b, cheap("SECRET-wrong-pass")...)
	errs = append(errs, err)
	blob, ver, _ := b.Get(ctx, "a")
	blob[len(blob)-3] ^= 1
	b.Put(ctx, "a", blob, ver)
	_, _, err = v.Store("a").Open(ctx)
	errs = append(errs, err)
	hdr, hver, _ := b.Get(ctx, backends.HeaderName)
	hdr[40] ^= 1
	b.Put(ctx, backends.HeaderName, hdr, hver)
	_, err = Open(ctx, b, cheap(secretPass)...)
	errs = append(errs, err)
	var secrets []string
	for _, g := range v.gens {
		secrets = append(secrets, string(g.key.Bytes()), fmt.Sprintf("%x", g.key.Bytes()))
	}
	secrets = append(secrets, secretPass, "SECRET-wrong-pass", "PLAINTEXT-SECRET")
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), s) {
				t.Fatalf("error %q contains a secret", err)
			}
		}
	}
}
