package vault

import (
	"context"
	"sync"
	"testing"
)

func TestOpenOrCreate(t *testing.T) {
	ctx := context.Background()
	b, _ := newMemory()
	v, created, err := OpenOrCreate(ctx, b, cheap(testPass)...)
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	seal(t, v, "a", "alpha")
	v.Close()
	v, created, err = OpenOrCreate(ctx, b, cheap(testPass)...)
	if err != nil || created || open(t, v, "a") != "alpha" {
		t.Fatalf("second: created %v, %v", created, err)
	}
	v.Close()
	// A wrong passphrase never creates over the vault.
	_, created, err = OpenOrCreate(ctx, b, cheap("wrong")...)
	wantErr(t, err, ErrWrongKey, "OpenOrCreate with a wrong passphrase")
	if created {
		t.Fatal("created over an existing vault")
	}

	// Racing first starts: one creates, the others open that vault.
	b2, _ := newMemory()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	creators := 0
	var mu sync.Mutex
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, c, err := OpenOrCreate(ctx, b2, cheap(testPass)...)
			if err != nil {
				t.Error(err)
				return
			}
			defer v.Close()
			mu.Lock()
			defer mu.Unlock()
			ids[i] = v.ID()
			if c {
				creators++
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racing OpenOrCreate opened different vaults: %v", ids)
		}
	}
	if creators != 1 {
		t.Fatalf("%d creators, want 1", creators)
	}
}
