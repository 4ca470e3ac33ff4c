package memory

import (
	"context"
	"errors"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
)

func TestKeyStore(t *testing.T) {
	ctx := context.Background()
	var k KeyStore // the zero value works
	if _, err := k.GetKey(ctx, "a"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("GetKey of nothing: %v", err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := k.PutKey(ctx, "a", key); err != nil {
		t.Fatal(err)
	}
	key[0] = 'X' // the store kept a copy
	got, err := k.GetKey(ctx, "a")
	if err != nil || string(got) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("GetKey: %q, %v", got, err)
	}
	got[1] = 'Y' // and hands out copies
	if again, _ := k.GetKey(ctx, "a"); again[1] != '1' {
		t.Fatal("GetKey returned the stored slice")
	}
	if err := k.DeleteKey(ctx, "a"); err != nil || k.Len() != 0 {
		t.Fatalf("DeleteKey: %v, %d left", err, k.Len())
	}
	if err := k.DeleteKey(ctx, "a"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("DeleteKey twice: %v", err)
	}
	k.PutKey(ctx, "b", key)
	k.Wipe()
	if k.Len() != 0 {
		t.Fatal("Wipe left keys")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := k.PutKey(cctx, "c", key); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutKey with a cancelled context: %v", err)
	}
}
