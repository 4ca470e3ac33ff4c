// Package secmem holds key material in memory that is wiped on release and,
// where the operating system allows, locked against swap and left out of
// core dumps.
//
// # Why not github.com/awnumar/memguard
//
// memguard offers more than this package: guard pages around each buffer, a
// canary, read-only protection between uses, an encrypted "Enclave" for data
// at rest in memory, and signal handlers that wipe everything on an
// interrupt. We chose golang.org/x/sys/unix (mmap, mlock, madvise) instead,
// for these reasons:
//
//   - Scope. The vault keeps a handful of 32-byte keys for the life of an
//     unlocked vault. What matters for them is: not written to swap, not in a
//     core dump, zeroed on Close. mmap + mlock + MADV_DONTDUMP gives exactly
//     that in about a hundred lines a reviewer can read in one sitting.
//   - Dependencies. memguard pulls in github.com/awnumar/memcall and its own
//     copies of crypto code; every added module is code a security reviewer
//     of this project must also read. golang.org/x/sys is already required.
//   - Process-global side effects. memguard installs signal handlers
//     (CatchInterrupt) and may call os.Exit on a canary failure
//     (SafePanic/Purge); a library must not take over its host program's
//     signals or exit path.
//   - Limits shared by both. Neither can stop the Go runtime or a library
//     (argon2's work area, the AEAD's internal state, a string made from a
//     key) from leaving copies on the ordinary heap; memguard's guard pages
//     protect against overflows in unsafe code, which this module does not
//     have.
//
// Locking is best effort: RLIMIT_MEMLOCK is often 64 KiB or 8 MiB, and a
// container may forbid mlock entirely. A Buffer that could not be locked
// still works and is still wiped; Buffer.LockErr says why it is not locked,
// so a caller can report it. On platforms without mmap (windows, wasm) a
// Buffer is an ordinary heap slice that is wiped on Destroy.
package secmem

import (
	"errors"
	"runtime"
	"sync"
)

// Wipe overwrites b with zeros. The write cannot be removed by the compiler
// as a dead store: b is kept alive until after the clear.
func Wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// ErrUnsupported is the LockErr of buffers on platforms where this package
// cannot lock memory.
var ErrUnsupported = errors.New("secmem: memory locking not supported on this platform")

// Buffer is a fixed-size byte buffer for key material. Its memory is, where
// the platform allows, outside the Go heap, locked into RAM and excluded
// from core dumps. Destroy zeroes and releases it.
//
// A Buffer is safe for concurrent use by several goroutines as long as none
// of them calls Destroy while others still use Bytes.
type Buffer struct {
	mu      sync.Mutex
	b       []byte // len is the requested size; nil after Destroy
	mapping []byte // whole-page mapping behind b, nil for heap buffers
	locked  bool
	lockErr error
}

// New returns a zeroed Buffer of n bytes. It never fails for lack of
// locked memory: if locking is refused, the Buffer is unlocked and LockErr
// reports why. New panics if n is negative (a programmer error).
func New(n int) *Buffer {
	if n < 0 {
		panic("secmem: negative size")
	}
	buf := new(Buffer)
	buf.alloc(n)
	return buf
}

// From returns a Buffer holding a copy of src and wipes src.
func From(src []byte) *Buffer {
	buf := New(len(src))
	copy(buf.b, src)
	Wipe(src)
	return buf
}

// Bytes returns the buffer's memory. The slice is valid until Destroy; after
// Destroy it returns nil. Do not append to it.
func (b *Buffer) Bytes() []byte {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b
}

// Len is the size of the buffer, 0 after Destroy.
func (b *Buffer) Len() int { return len(b.Bytes()) }

// Locked reports whether the buffer's pages are locked into RAM.
func (b *Buffer) Locked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.locked
}

// LockErr is nil if the buffer is locked and excluded from core dumps, and
// otherwise says which of those protections the OS refused (or
// ErrUnsupported). The buffer is usable either way.
func (b *Buffer) LockErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lockErr
}

// Destroy zeroes the buffer and releases its memory. It is idempotent, and
// a nil *Buffer is a no-op. Slices obtained from Bytes must not be used
// afterwards: on platforms with mmap the pages are unmapped and an access
// faults.
func (b *Buffer) Destroy() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b == nil {
		return
	}
	Wipe(b.b)
	b.free()
	b.b, b.mapping, b.locked = nil, nil, false
}
