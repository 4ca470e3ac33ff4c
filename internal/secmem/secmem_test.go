package secmem

import (
	"bytes"
	"testing"
)

func TestWipe(t *testing.T) {
	b := []byte("correct horse battery staple")
	Wipe(b)
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatalf("Wipe left %q", b)
	}
	Wipe(nil) // must not panic
}

func TestNewZeroedAndSized(t *testing.T) {
	for _, n := range []int{0, 1, 32, 4095, 4096, 4097, 70000} {
		buf := New(n)
		if got := buf.Len(); got != n {
			t.Fatalf("New(%d).Len() = %d", n, got)
		}
		if !bytes.Equal(buf.Bytes(), make([]byte, n)) {
			t.Fatalf("New(%d) not zeroed", n)
		}
		if cap(buf.Bytes()) != n {
			t.Fatalf("New(%d) cap = %d, want %d (append must not write past the key)", n, cap(buf.Bytes()), n)
		}
		for i := range buf.Bytes() {
			buf.Bytes()[i] = 0xA5
		}
		buf.Destroy()
	}
}

func TestDestroy(t *testing.T) {
	buf := New(32)
	b := buf.Bytes()
	copy(b, "0123456789abcdef0123456789abcdef")
	heapBacked := buf.mapping == nil
	buf.Destroy()
	if buf.Bytes() != nil || buf.Len() != 0 {
		t.Fatal("Bytes after Destroy is not nil")
	}
	if buf.Locked() {
		t.Fatal("Locked after Destroy")
	}
	if heapBacked {
		// Heap memory stays readable: check the wipe directly.
		if !bytes.Equal(b, make([]byte, 32)) {
			t.Fatalf("Destroy did not wipe: %q", b)
		}
	}
	buf.Destroy() // idempotent
	var nilBuf *Buffer
	nilBuf.Destroy()
	if nilBuf.Bytes() != nil {
		t.Fatal("nil Buffer Bytes not nil")
	}
}

func TestFromWipesSource(t *testing.T) {
	src := []byte("secret-key-material")
	want := append([]byte(nil), src...)
	buf := From(src)
	defer buf.Destroy()
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("From copied %q, want %q", buf.Bytes(), want)
	}
	if !bytes.Equal(src, make([]byte, len(src))) {
		t.Fatalf("From left source %q", src)
	}
}

func TestNewNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(-1) did not panic")
		}
	}()
	New(-1)
}

func TestConcurrentUse(t *testing.T) {
	buf := New(32)
	defer buf.Destroy()
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				_ = buf.Bytes()
				_ = buf.Locked()
				_ = buf.LockErr()
			}
		}()
	}
	for range 4 {
		<-done
	}
}
