package memory_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
)

func TestFailNext(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	v, _ := b.Put(ctx, "s", []byte("old"), backends.Absent)
	b.FailNext(memory.OpPut, 2, syscall.ENOSPC)
	for i := range 2 {
		_, err := b.Put(ctx, "s", []byte("new"), v)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Put %d: %v, want ENOSPC", i, err)
		}
		var oe *backends.OpError
		if !errors.As(err, &oe) || oe.Op != "put" || oe.Name != "s" {
			t.Fatalf("Put %d: %#v is not an OpError for put \"s\"", i, err)
		}
	}
	if got, gv, _ := b.Get(ctx, "s"); string(got) != "old" || gv != v {
		t.Fatalf("a failed Put changed the store: %q", got)
	}
	if _, err := b.Put(ctx, "s", []byte("new"), v); err != nil {
		t.Fatalf("third Put: %v", err)
	}
	// Other operations are not affected; a pending failure can be
	// cancelled; calls refused for a bad name do not use it up.
	b.FailNext(memory.OpGet, 1, backends.ErrUnavailable)
	if _, _, err := b.Get(ctx, "../x"); !errors.Is(err, backends.ErrInvalidName) {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "s"); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Get: %v, want ErrUnavailable", err)
	}
	b.FailNext(memory.OpList, 1, errors.New("boom"))
	b.FailNext(memory.OpList, 0, nil)
	if _, err := b.List(ctx); err != nil {
		t.Fatalf("List after cancelling its failure: %v", err)
	}
}

func TestSetDelay(t *testing.T) {
	b := memory.New()
	b.SetDelay(memory.OpGet, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, _, err := b.Get(ctx, "s")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed Get: %v, want DeadlineExceeded", err)
	}
	b.SetDelay(memory.OpGet, 0)
	if _, _, err := b.Get(context.Background(), "s"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get without delay: %v", err)
	}
}

func TestBeforeAfter(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	var seen atomic.Value
	b.Before(memory.OpPut, func(ctx context.Context, name string) error {
		if name == "refused" {
			return syscall.EROFS
		}
		return nil
	})
	b.After(memory.OpPut, func(ctx context.Context, name string, err error) {
		seen.Store(fmt.Sprintf("%s:%v", name, err == nil))
	})
	if _, err := b.Put(ctx, "refused", []byte("x"), backends.Absent); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Put refused by Before: %v", err)
	}
	if seen.Load() != "refused:false" {
		t.Fatalf("After saw %v", seen.Load())
	}
	if _, _, err := b.Get(ctx, "refused"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatal("a Put refused by Before stored its blob")
	}
	// After runs once the blob is stored: a crash "after the write, before
	// the acknowledgement" can be simulated there.
	b.After(memory.OpPut, func(ctx context.Context, name string, err error) {
		if _, _, gerr := b.Get(ctx, name); gerr != nil {
			t.Errorf("in After, Get: %v", gerr)
		}
	})
	if _, err := b.Put(ctx, "ok", []byte("x"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	b.Before(memory.OpPut, nil)
	b.After(memory.OpPut, nil)
}

// ExampleBackend_FailNext shows a test making the next save fail, as a
// full disk would, to check how the code above the backend copes.
func ExampleBackend_FailNext() {
	ctx := context.Background()
	b := memory.New()
	v, _ := b.Put(ctx, "bot", []byte("sealed v1"), backends.Absent)

	b.FailNext(memory.OpPut, 1, syscall.ENOSPC)
	_, err := b.Put(ctx, "bot", []byte("sealed v2"), v)
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.ENOSPC))

	blob, _, _ := b.Get(ctx, "bot")
	fmt.Printf("%s\n", blob)
	// Output:
	// backends/memory: put "bot": no space left on device
	// true
	// sealed v1
}
