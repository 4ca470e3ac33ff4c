//go:build unix

package secmem

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// alloc maps n bytes (rounded up to whole pages) of anonymous memory, then
// locks it and excludes it from core dumps, recording any refusal in
// lockErr. If even mmap fails, it falls back to the heap.
func (b *Buffer) alloc(n int) {
	if n == 0 {
		b.b = []byte{}
		b.lockErr = nil
		return
	}
	page := os.Getpagesize()
	size := (n + page - 1) / page * page
	m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		b.b = make([]byte, n)
		b.lockErr = fmt.Errorf("secmem: mmap: %w", err)
		return
	}
	b.mapping = m
	b.b = m[:n:n]
	var errs []error
	if err := unix.Mlock(m); err != nil {
		errs = append(errs, fmt.Errorf("secmem: mlock: %w (raise RLIMIT_MEMLOCK)", err))
	} else {
		b.locked = true
	}
	if err := dontDump(m); err != nil {
		errs = append(errs, err)
	}
	b.lockErr = errors.Join(errs...)
}

func (b *Buffer) free() {
	if b.mapping == nil {
		return
	}
	if b.locked {
		_ = unix.Munlock(b.mapping)
	}
	// An error here would mean the mapping is not ours; the memory is
	// already zeroed, so there is nothing more to do with it.
	_ = unix.Munmap(b.mapping)
}
