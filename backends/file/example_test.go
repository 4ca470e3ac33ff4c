package file_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// Example shows a read-modify-write cycle under the cross-process lock,
// with the version check as the fence.
func Example() {
	parent, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(parent)
	ctx := context.Background()

	b, err := file.New(filepath.Join(parent, "vault")) // created 0700
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	v, err := b.Put(ctx, "bot-1", []byte("sealed session v1"), backends.Absent)
	if err != nil {
		log.Fatal(err)
	}

	lock, err := b.Lock(ctx, "bot-1") // other processes wait here
	if err != nil {
		log.Fatal(err)
	}
	blob, v, _ := b.Get(ctx, "bot-1")
	fmt.Printf("read %q\n", blob)
	if _, err := b.Put(ctx, "bot-1", []byte("sealed session v2"), v); err != nil {
		log.Fatal(err)
	}
	lock.Unlock(ctx)

	// A write based on the stale version fails instead of losing v2.
	_, err = b.Put(ctx, "bot-1", []byte("sealed session, stale"), v)
	fmt.Println(errors.Is(err, backends.ErrConflict))

	prev, _, _ := b.Previous(ctx, "bot-1")
	fmt.Printf("previous generation %q\n", prev)
	names, _ := b.List(ctx)
	fmt.Println(names)
	// Output:
	// read "sealed session v1"
	// true
	// previous generation "sealed session v1"
	// [bot-1]
}
