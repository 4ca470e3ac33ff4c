package secretstore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// The tests in this file need a keychain that does not answer (a prompt
// nobody sees). No real keychain can be made to do that on demand, so this
// is the one place with a fake: gateStore, an in-memory Store whose calls
// wait on a gate.

// gateStore keeps entries in a map; while its gate is closed (non-nil and
// not yet released), the selected calls block.
type gateStore struct {
	mu        sync.Mutex
	m         map[string][]byte
	gate      chan struct{} // calls wait for it to be closed; nil: no wait
	gateOps   string        // which ops wait: "get", "set", "delete" or "" for all
	active    int           // calls running now
	maxActive int           // most calls ever running at once
	handedOut [][]byte      // every slice Get returned, to check wiping
	sets      []string      // values Set, in order
}

func newGateStore() *gateStore { return &gateStore{m: map[string][]byte{}} }

// block makes the calls of op ("" for all) wait until the returned release
// func is called.
func (s *gateStore) block(op string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	s.gate, s.gateOps = g, op
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(g)
		})
	}
}

func (s *gateStore) enter(op string) {
	s.mu.Lock()
	s.active++
	s.maxActive = max(s.maxActive, s.active)
	g := s.gate
	if s.gateOps != "" && s.gateOps != op {
		g = nil
	}
	s.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (s *gateStore) leave() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

func (s *gateStore) Get(account string) ([]byte, error) {
	s.enter("get")
	defer s.leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[account]
	if !ok {
		return nil, &StoreError{Kind: backends.ErrNotFound}
	}
	out := bytes.Clone(v)
	s.handedOut = append(s.handedOut, out)
	return out, nil
}

func (s *gateStore) Set(account string, value []byte) error {
	s.enter("set")
	defer s.leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[account] = bytes.Clone(value)
	s.sets = append(s.sets, string(value))
	return nil
}

func (s *gateStore) Delete(account string) error {
	s.enter("delete")
	defer s.leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[account]; !ok {
		return &StoreError{Kind: backends.ErrNotFound}
	}
	delete(s.m, account)
	return nil
}

func (s *gateStore) MaxValueLen(string) int { return 4096 }

// noHang bounds how long a call that should return at a 100 ms deadline
// may take before the test calls it hung. Generous: it is not a speed
// test.
const noHang = 5 * time.Second

func wantTimeout(t *testing.T, what string, err error, elapsed time.Duration) {
	t.Helper()
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: %v, want a *TimeoutError matching ErrUnavailable and DeadlineExceeded", what, err)
	}
	if elapsed > noHang {
		t.Fatalf("%s returned after %v: the caller hung", what, elapsed)
	}
}

func TestPromptNeverAnswers(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{Name: "test"})
	release := s.block("")
	defer release()
	b, err := k.Backend("ns")
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(ctx context.Context) error{
		"GetKey":    func(ctx context.Context) error { _, err := k.GetKey(ctx, "v/k"); return err },
		"PutKey":    func(ctx context.Context) error { return k.PutKey(ctx, "v/k", []byte("key")) },
		"DeleteKey": func(ctx context.Context) error { return k.DeleteKey(ctx, "v/k") },
		"Get":       func(ctx context.Context) error { _, _, err := b.Get(ctx, "n"); return err },
		"Put":       func(ctx context.Context) error { _, err := b.Put(ctx, "n", []byte("b"), backends.Any); return err },
		"Delete":    func(ctx context.Context) error { return b.Delete(ctx, "n", backends.Any) },
		"List":      func(ctx context.Context) error { _, err := b.List(ctx); return err },
		"Probe":     k.Probe,
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		wantTimeout(t, name, err, time.Since(start))
		cancel()
	}
}

func TestDefaultTimeout(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{Timeout: 100 * time.Millisecond})
	release := s.block("")
	defer release()
	start := time.Now()
	_, err := k.GetKey(context.Background(), "v/k") // no deadline of its own
	wantTimeout(t, "GetKey without a deadline", err, time.Since(start))
}

func TestCanceledWhileWaiting(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{})
	release := s.block("")
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := k.GetKey(ctx, "v/k")
	if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetKey cancelled while waiting: %v, want context.Canceled", err)
	}
}

// A secret that arrives after its caller left is wiped, not left behind:
// both the entry the keychain handed over and the key decoded from it.
func TestAbandonedSecretIsWiped(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{})
	key := bytes.Repeat([]byte{0xa5}, 32)
	if err := k.PutKey(t.Context(), "v/k", key); err != nil {
		t.Fatal(err)
	}
	release := s.block("get")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := k.GetKey(ctx, "v/k")
	wantTimeout(t, "GetKey", err, time.Since(start))
	release()
	waitIdle(t, k)
	s.mu.Lock()
	handed := s.handedOut
	s.mu.Unlock()
	if len(handed) != 1 || !allZero(handed[0]) {
		t.Fatalf("the entry handed over after the caller left was not wiped: %x", handed)
	}

	// What the operation returns (the decoded key) is wiped too.
	gate := make(chan struct{})
	var mu sync.Mutex
	var secret []byte
	ctx2, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, err = k.call(ctx2, "get key", "v/k", false, func(context.Context) ([]byte, error) {
		<-gate
		mu.Lock()
		defer mu.Unlock()
		secret = bytes.Clone(key)
		return secret, nil
	})
	wantTimeout(t, "call", err, time.Since(start))
	close(gate)
	waitIdle(t, k)
	mu.Lock()
	defer mu.Unlock()
	if !allZero(secret) {
		t.Fatalf("the result of an abandoned call was not wiped: %x", secret)
	}
}

// waitIdle waits until every call of k has returned, abandoned ones
// included: it takes all of k's call slots (each is given back after its
// call's secret is handed over or wiped), then gives them back.
func waitIdle(t *testing.T, k *Keychain) {
	t.Helper()
	timeout := time.After(noHang)
	for i := 0; i < MaxInFlight; i++ {
		select {
		case k.slots <- struct{}{}:
		case <-timeout:
			t.Fatal("abandoned calls still running")
		}
	}
	for i := 0; i < MaxInFlight; i++ {
		<-k.slots
	}
}

func allZero(b []byte) bool { return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) }

// A hung keychain holds at most MaxInFlight goroutines; further callers
// fail at their deadline without starting another call.
func TestInFlightBound(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{})
	release := s.block("")
	var wg sync.WaitGroup
	for i := 0; i < MaxInFlight+4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := k.GetKey(ctx, "v/k")
			wantTimeout(t, "GetKey", err, time.Since(start))
		}()
	}
	wg.Wait()
	s.mu.Lock()
	most := s.maxActive
	s.mu.Unlock()
	if most > MaxInFlight {
		t.Fatalf("%d keychain calls ran at once, want at most %d", most, MaxInFlight)
	}
	release()
	// The keychain answers again: calls work once the stuck ones drain.
	ctx, cancel := context.WithTimeout(t.Context(), noHang)
	defer cancel()
	if _, err := k.GetKey(ctx, "v/k"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("GetKey after the keychain came back: %v, want ErrNotFound", err)
	}
}

// A write whose caller timed out can still land when the keychain
// answers, but never after a later write: writes wait for it.
func TestStuckWriteKeepsOrder(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{})
	release := s.block("set")
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(t.Context(), 100*time.Millisecond)
	}
	ctx, cancel := short()
	start := time.Now()
	err := k.PutKey(ctx, "v/k", []byte("A"))
	cancel()
	wantTimeout(t, "PutKey A", err, time.Since(start))

	ctx, cancel = short()
	start = time.Now()
	err = k.PutKey(ctx, "v/k", []byte("B"))
	cancel()
	wantTimeout(t, "PutKey B (waits for A)", err, time.Since(start))

	release() // A lands now
	ctx, cancel = context.WithTimeout(t.Context(), noHang)
	defer cancel()
	if err := k.PutKey(ctx, "v/k", []byte("C")); err != nil {
		t.Fatalf("PutKey C: %v", err)
	}
	got, err := k.GetKey(ctx, "v/k")
	if err != nil || string(got) != "C" {
		t.Fatalf("GetKey = %q, %v; want C", got, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if want := []string{"svK1A", "svK1C"}; len(s.sets) != 2 || s.sets[0] != want[0] || s.sets[1] != want[1] {
		t.Fatalf("keychain saw writes %q, want %q (B never started, A before C)", s.sets, want)
	}
}

// A Put whose caller left while it was still reading does not go on to
// write.
func TestAbandonedPutDoesNotWrite(t *testing.T) {
	s := newGateStore()
	k := New(s, Options{})
	b, err := k.Backend("ns")
	if err != nil {
		t.Fatal(err)
	}
	release := s.block("get")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	start := time.Now()
	_, err = b.Put(ctx, "n", []byte("blob"), backends.Absent)
	cancel()
	wantTimeout(t, "Put", err, time.Since(start))
	release()
	waitIdle(t, k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) != 0 || len(s.sets) != 0 {
		t.Fatalf("the abandoned Put wrote: %q", s.sets)
	}
}
