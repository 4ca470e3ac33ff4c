//go:build !unix

package secmem

// alloc uses the Go heap: this platform has no mmap in golang.org/x/sys/unix.
// The buffer is still wiped on Destroy.
func (b *Buffer) alloc(n int) {
	b.b = make([]byte, n)
	b.lockErr = ErrUnsupported
}

func (b *Buffer) free() {}
