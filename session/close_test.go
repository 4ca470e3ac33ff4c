package session

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// blockingCloser is an owned closer that waits for release before it
// returns, and records that it returned.
type blockingCloser struct {
	entered, release chan struct{}
	returned         atomic.Bool
}

func (c *blockingCloser) Close() error {
	close(c.entered)
	<-c.release
	c.returned.Store(true)
	return nil
}

// TestSecondCloseWaitsForTheFirst: a Close that finds another under way
// returns only once the first has returned from its owned closers (nil),
// or when its own ctx ends (ctx.Err()); it closes nothing again.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	c := &blockingCloser{entered: make(chan struct{}), release: make(chan struct{})}
	m, err := NewManager(ctxT(t), newTestStore(t), WithOwned(c))
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- m.Close(context.Background()) }()
	<-c.entered
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Close while the first is in its closers: %v, want the context's deadline", err)
	}
	second := make(chan error, 1)
	go func() { second <- m.Close(context.Background()) }()
	select {
	case err := <-second:
		t.Fatalf("second Close returned (%v) before the owned closer did", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(c.release)
	if err := <-second; err != nil || !c.returned.Load() {
		t.Fatalf("second Close: %v; owned closer returned: %v", err, c.returned.Load())
	}
	if err := <-first; err != nil {
		t.Fatalf("first Close: %v", err)
	}
}
