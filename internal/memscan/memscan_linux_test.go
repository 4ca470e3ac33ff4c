//go:build linux

package memscan

import (
	"encoding/base64"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func mustScan(t *testing.T, m *Marker) Result {
	t.Helper()
	r, err := Scan(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Scanned == 0 || r.Regions == 0 {
		t.Fatalf("scanned nothing: %v", r)
	}
	return r
}

func TestScanFindsAndForgets(t *testing.T) {
	m := NewMarker(32)
	if r := mustScan(t, m); len(r.Hits) != 0 {
		t.Fatalf("fresh marker found before any copy was made:\n%v", r)
	}
	p := m.Plain()
	r := mustScan(t, m)
	if r.Count(Plain) != 1 {
		t.Fatalf("one plain copy in the heap, scan found:\n%v", r)
	}
	Wipe(p)
	runtime.KeepAlive(p)
	if r := mustScan(t, m); r.Count(Plain) != 0 {
		t.Fatalf("copy wiped, scan still finds:\n%v", r)
	}
	t.Logf("scan: %v", r)
}

var sink string

func TestScanFindsStringCopies(t *testing.T) {
	m := NewMarker(32)
	p := m.Plain()
	sink = string(p) // a Go string cannot be wiped
	Wipe(p)
	r := mustScan(t, m)
	if r.Count(Plain) < 1 {
		t.Fatalf("string copy not found:\n%v", r)
	}
	sink = ""
}

func TestScanFindsBase64(t *testing.T) {
	m := NewMarker(32)
	for align := range 3 {
		raw := m.AppendPlain(make([]byte, align, 64))
		enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
		base64.StdEncoding.Encode(enc, raw)
		Wipe(raw)
		r := mustScan(t, m)
		if r.Count(Base64) != 1 || r.Count(Plain) != 0 {
			t.Fatalf("align %d: want 1 base64 copy, 0 plain:\n%v", align, r)
		}
		Wipe(enc)
		runtime.KeepAlive(enc)
	}
}

// TestScanChunkBoundaries puts copies across, just before and just after
// the boundary between two read chunks of one mapping: each is counted
// exactly once.
func TestScanChunkBoundaries(t *testing.T) {
	m := NewMarker(32)
	region, err := unix.Mmap(-1, 0, 3*chunkSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(region)
	offsets := []int{0, chunkSize - 100, chunkSize - 20, chunkSize + 20, 2*chunkSize - 31, 2*chunkSize + 1, 3*chunkSize - 32}
	for _, off := range offsets {
		m.reveal(region[off : off+32])
	}
	r := mustScan(t, m)
	if r.Count(Plain) != len(offsets) {
		t.Fatalf("placed %d copies, found:\n%v", len(offsets), r)
	}
	Wipe(region)
	if r := mustScan(t, m); r.Count(Plain) != 0 {
		t.Fatalf("after wipe:\n%v", r)
	}
}
