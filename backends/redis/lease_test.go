package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// TestLeaseExpiry: without extension a lease ends after its TTL and a
// waiter gets in; the former holder can then neither release nor extend
// the new holder's lease, learns that it lost its own, and its CAS write
// based on what it read under the lease fails.
func TestLeaseExpiry(t *testing.T) {
	const ttl = 300 * time.Millisecond
	b, _ := newTestBackend(t, WithLeaseTTL(ttl), WithAutoExtend(false))
	ctx := context.Background()

	v1, err := b.Put(ctx, "s", []byte("session 1"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	a, err := b.Lease(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	_, readV, err := b.Get(ctx, "s") // A reads under its lease...
	if err != nil || readV != v1 {
		t.Fatalf("Get = %q, %v", readV, err)
	}

	// ...and stalls past its TTL. B waits, then gets the lease.
	start := time.Now()
	bl, err := b.Lease(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < ttl/2 {
		t.Fatalf("B got the lease after %v, before A's TTL of %v could end", waited, ttl)
	}
	select {
	case <-a.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("A's Lost channel did not close after its TTL")
	}
	_, bv, _ := b.Get(ctx, "s")
	v2, err := b.Put(ctx, "s", []byte("session 2 (B refreshed)"), bv)
	if err != nil {
		t.Fatal(err)
	}

	// A wakes up: its write is fenced by the version it read.
	if _, err := b.Put(ctx, "s", []byte("session from stale A"), readV); !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("stale holder's Put: %v, want ErrConflict", err)
	}
	// A cannot extend or release B's lease.
	if err := a.Extend(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale Extend: %v, want ErrLeaseLost", err)
	}
	if err := a.Unlock(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale Unlock: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if c, err := b.Lock(sctx, "s"); err == nil {
		c.Unlock(ctx)
		t.Fatal("the stale holder's Extend or Unlock released B's lease")
	} else if !errors.Is(err, backends.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of B's lease: %v, want ErrLocked and DeadlineExceeded", err)
	}
	cancel()
	got, gv, err := b.Get(ctx, "s")
	if err != nil || gv != v2 || string(got) != "session 2 (B refreshed)" {
		t.Fatalf("blob = %q, %q, %v; want B's", got, gv, err)
	}
	if err := bl.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseStaleUnlockAfterExpiry: Unlock of a lease that expired, and
// that nobody took since, reports ErrLeaseLost.
func TestLeaseStaleUnlockAfterExpiry(t *testing.T) {
	b, prefix := newTestBackend(t, WithLeaseTTL(MinLeaseTTL), WithAutoExtend(false))
	ctx := context.Background()
	l, err := b.Lease(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	<-l.Lost()
	// The server started the TTL when the request arrived, a little after
	// the local estimate: wait until it has expired there too.
	raw := rawClient(t, redisURL(t))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, err := raw.Exists(ctx, "{"+prefix+"}:lock:x").Result(); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lease key still there 10 s after its TTL")
		}
	}
	if err := l.Unlock(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Unlock after expiry: %v, want ErrLeaseLost", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock: %v, want nil", err)
	}
}

// TestLeaseAutoExtend: a held lease outlives many TTLs while its holder
// lives, and ends at Unlock.
func TestLeaseAutoExtend(t *testing.T) {
	// Long enough that a loaded machine (race detector, other jobs) does
	// not delay an extension past the TTL; the lease still outlives three.
	const ttl = time.Second
	b, prefix := newTestBackend(t, WithLeaseTTL(ttl))
	ctx := context.Background()
	l, err := b.Lease(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, ttl/2)
		other, err := b.Lock(sctx, "x")
		cancel()
		if err == nil {
			other.Unlock(ctx)
			t.Fatal("another owner took an auto-extended lease")
		}
		select {
		case <-l.Lost():
			t.Fatal("auto-extended lease reported lost")
		default:
		}
	}
	if err := l.Extend(ctx); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rawClient(t, redisURL(t)).Exists(ctx, "{"+prefix+"}:lock:x").Result(); n != 0 {
		t.Fatal("lease key still there after Unlock")
	}
	if err := l.Extend(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Extend after Unlock: %v, want ErrLeaseLost", err)
	}
}

// TestLeaseAcquireIdempotent: an acquire retried with the same token (as
// go-redis does after a lost reply) finds the lease already its own.
func TestLeaseAcquireIdempotent(t *testing.T) {
	b, prefix := newTestBackend(t)
	ctx := context.Background()
	key := "{" + prefix + "}:lock:x"
	for i := range 2 {
		n, err := acquireScript.Run(ctx, b.client, []string{key}, "tok", "10000").Int64()
		if err != nil || n != 0 {
			t.Fatalf("acquire #%d = %d, %v; want 0 (held)", i+1, n, err)
		}
	}
	n, err := acquireScript.Run(ctx, b.client, []string{key}, "other", "10000").Int64()
	if err != nil || n <= 0 || n > 10000 {
		t.Fatalf("acquire by another token = %d, %v; want the remaining TTL", n, err)
	}
}

// TestLeaseContextCancelWhileWaiting: a waiter stops at cancel, and the
// error says the lock is held.
func TestLeaseContextCancelWhileWaiting(t *testing.T) {
	b, _ := newTestBackend(t)
	ctx := context.Background()
	l, err := b.Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = b.Lock(cctx, "x")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, backends.ErrLocked) {
		t.Fatalf("Lock cancelled while waiting: %v, want Canceled and ErrLocked", err)
	}
}

// Child process side of TestLeaseProcesses; the parent sets these.
const (
	envLeaseChild  = "SESSIONVAULT_REDIS_LEASE_CHILD"
	envLeasePrefix = "SESSIONVAULT_REDIS_LEASE_PREFIX"
	envLeaseLog    = "SESSIONVAULT_REDIS_LEASE_LOG"
	leaseRounds    = 25
)

// TestLeaseChild is the body of one process in TestLeaseProcesses.
func TestLeaseChild(t *testing.T) {
	id := os.Getenv(envLeaseChild)
	if id == "" {
		t.Skip("helper process for TestLeaseProcesses")
	}
	ctx := context.Background()
	b, err := NewFromURL(ctx, redisURL(t), WithPrefix(os.Getenv(envLeasePrefix)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f, err := os.OpenFile(os.Getenv(envLeaseLog), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range leaseRounds {
		l, err := b.Lock(ctx, "X")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "enter %s\n", id)
		// A read-modify-write under the lock: with real exclusion the
		// CAS never conflicts.
		blob, v, err := b.Get(ctx, "counter")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(blob))
		time.Sleep(time.Millisecond)
		if _, err := b.Put(ctx, "counter", []byte(strconv.Itoa(n+1)), v); err != nil {
			t.Fatalf("Put under the lock: %v", err)
		}
		fmt.Fprintf(f, "exit %s\n", id)
		if err := l.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeaseProcesses: four real processes take the same lease in turns;
// the shared log shows no two inside at once, and a counter updated under
// the lock loses no increment.
func TestLeaseProcesses(t *testing.T) {
	const procs = 4
	url := redisURL(t)
	prefix := testPrefix(t, url)
	b, err := NewFromURL(context.Background(), url, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Put(context.Background(), "counter", []byte("0"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, procs)
	outs := make([][]byte, procs)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestLeaseChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envLeaseChild+"="+strconv.Itoa(i),
				envLeasePrefix+"="+prefix, envLeaseLog+"="+logPath)
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inside := ""
	lines := 0
	for sc.Scan() {
		lines++
		op, id, _ := strings.Cut(sc.Text(), " ")
		switch {
		case op == "enter" && inside == "":
			inside = id
		case op == "exit" && inside == id:
			inside = ""
		default:
			t.Fatalf("line %d: %q while %q was inside: two holders at once", lines, sc.Text(), inside)
		}
	}
	if want := 2 * procs * leaseRounds; lines != want {
		t.Fatalf("%d log lines, want %d", lines, want)
	}
	blob, _, err := b.Get(context.Background(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(blob); got != strconv.Itoa(procs*leaseRounds) {
		t.Fatalf("counter = %s, want %d", got, procs*leaseRounds)
	}
}
