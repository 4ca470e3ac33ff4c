package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// headerFiles returns the file backend's current and previous header
// (nil when there is none).
func headerFiles(t *testing.T, b *file.Backend) (cur, prev []byte) {
	t.Helper()
	ctx := context.Background()
	cur, _, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	prev, _, err = b.Previous(ctx, backends.HeaderName)
	if err != nil && !errors.Is(err, backends.ErrNotFound) {
		t.Fatal(err)
	}
	return cur, prev
}

// putHeader stores hdr as the current header; the header it replaces
// becomes the previous generation.
func putHeader(t *testing.T, b *file.Backend, hdr []byte) {
	t.Helper()
	if _, err := b.Put(context.Background(), backends.HeaderName, hdr, backends.Any); err != nil {
		t.Fatal(err)
	}
}

// damageHeader stores the current header with one bit flipped. Damage
// that the disk does to a stored file is caught by the file backend's own
// checksums (layout 2: the slot is refused and the one before it read
// instead); this is damage that reaches the vault: a header written
// damaged, or edited by someone who recomputed those checksums.
// The previous generation is left as it was: the good previous
// generation is made current for a moment, so that storing the damaged
// header makes it previous again.
func damageHeader(t *testing.T, b *file.Backend, off int) {
	t.Helper()
	hdr, prev := headerFiles(t, b)
	if prev != nil {
		putHeader(t, b, prev)
	}
	hdr[off%len(hdr)] ^= 0x10
	putHeader(t, b, hdr)
	if prev == nil {
		if err := b.DropPrevious(context.Background(), backends.HeaderName); err != nil {
			t.Fatal(err)
		}
	}
}

func sealN(t *testing.T, v *Vault, n int) {
	t.Helper()
	for i := range n {
		seal(t, v, fmt.Sprintf("s%02d", i), fmt.Sprint("value ", i))
	}
}

func allOpen(t *testing.T, v *Vault, n int) {
	t.Helper()
	for i := range n {
		if got := open(t, v, fmt.Sprintf("s%02d", i)); got != fmt.Sprint("value ", i) {
			t.Fatalf("s%02d = %q", i, got)
		}
	}
}

// TestCreateKeepsSpareHeader: on a backend that keeps previous
// generations, a new vault already has one of its header, identical.
func TestCreateKeepsSpareHeader(t *testing.T) {
	_, b := newFileVault(t, nil)
	cur, prev := headerFiles(t, b)
	if prev == nil || !bytes.Equal(cur, prev) {
		t.Fatalf("after Create: previous header generation %d bytes, want a copy of the %d-byte header", len(prev), len(cur))
	}
}

// TestRecoverHeaderBitFlip: a bit flipped in vault.hdr makes Open fail
// with ErrCorrupt; RecoverHeader restores the previous generation, every
// session opens with the returned Vault and with a fresh Open, and the
// damaged header is kept as the previous generation.
func TestRecoverHeaderBitFlip(t *testing.T) {
	for _, off := range []int{0, 9, 30, 77, -1} {
		t.Run(fmt.Sprint("byte ", off), func(t *testing.T) {
			ctx := context.Background()
			v, b := newFileVault(t, nil)
			const n = 12
			sealN(t, v, n)
			good, _ := headerFiles(t, b)
			if off < 0 {
				off = len(good) - 1
			}
			damageHeader(t, b, off)
			damaged, _ := headerFiles(t, b)
			_, err := Open(ctx, b, cheap(testPass)...)
			wantErr(t, err, ErrCorrupt, "Open of a damaged header")

			rv, rep, err := RecoverHeader(ctx, b, false, cheap(testPass)...)
			if err != nil {
				t.Fatal(err)
			}
			defer rv.Close()
			if !rep.Restored || !errors.Is(rep.Damage, ErrCorrupt) || rep.Sessions != n || len(rep.Unopenable) != 0 {
				t.Fatalf("report %+v", rep)
			}
			allOpen(t, rv, n)
			seal(t, rv, "s00", "after recovery") // the returned Vault writes too
			cur, prev := headerFiles(t, b)
			if !bytes.Equal(cur, good) || !bytes.Equal(prev, good) {
				t.Fatalf("after recovery: current header restored %v, spare copy good %v (damaged %v)", bytes.Equal(cur, good), bytes.Equal(prev, good), bytes.Equal(prev, damaged))
			}
			v2 := mustOpen(t, b, cheap(testPass)...)
			if got := open(t, v2, "s00"); got != "after recovery" {
				t.Fatalf("s00 = %q", got)
			}
		})
	}
}

// TestRecoverHeaderIntact: a header that opens is returned open and left
// alone; a wrong passphrase changes nothing either, damaged header or not.
func TestRecoverHeaderIntact(t *testing.T) {
	ctx := context.Background()
	v, b := newFileVault(t, nil)
	sealN(t, v, 3)
	cur0, prev0 := headerFiles(t, b)
	rv, rep, err := RecoverHeader(ctx, b, false, cheap(testPass)...)
	if err != nil || rep.Damage != nil || rep.Restored {
		t.Fatalf("intact header: %+v, %v", rep, err)
	}
	allOpen(t, rv, 3)
	rv.Close()
	_, _, err = RecoverHeader(ctx, b, true, cheap("wrong passphrase")...)
	wantErr(t, err, ErrWrongKey, "wrong passphrase, intact header")

	damageHeader(t, b, 40)
	cur1, _ := headerFiles(t, b)
	_, rep, err = RecoverHeader(ctx, b, true, cheap("wrong passphrase")...)
	wantErr(t, err, ErrWrongKey, "wrong passphrase, damaged header")
	if rep.Restored {
		t.Fatal("restored with a wrong passphrase")
	}
	if cur, prev := headerFiles(t, b); !bytes.Equal(cur, cur1) || !bytes.Equal(prev, prev0) || bytes.Equal(cur, cur0) {
		t.Fatal("a refused recovery changed the header files")
	}
	_, _, err = RecoverHeader(ctx, b, false)
	wantErr(t, err, ErrWrongKey, "no credentials")
}

// TestRecoverHeaderBothDamaged: with the previous generation damaged too,
// nothing is restored and the error is corruption.
func TestRecoverHeaderBothDamaged(t *testing.T) {
	ctx := context.Background()
	v, b := newFileVault(t, nil)
	sealN(t, v, 2)
	damageHeader(t, b, 50)
	cur, prev := headerFiles(t, b)
	prev[60] ^= 1
	putHeader(t, b, prev) // the damaged previous generation, current for a moment
	putHeader(t, b, cur)  // and the damaged header current again
	_, rep, err := RecoverHeader(ctx, b, true, cheap(testPass)...)
	wantErr(t, err, ErrCorrupt, "both generations damaged")
	if rep.Restored {
		t.Fatal("restored a damaged previous generation")
	}
}

// TestRecoverHeaderNoPrevious: a damaged header with no previous
// generation is reported as corruption that cannot be repaired here.
func TestRecoverHeaderNoPrevious(t *testing.T) {
	ctx := context.Background()
	_, b := newFileVault(t, nil)
	damageHeader(t, b, 50)
	if err := b.DropPrevious(ctx, backends.HeaderName); err != nil {
		t.Fatal(err)
	}
	_, rep, err := RecoverHeader(ctx, b, true, cheap(testPass)...)
	wantErr(t, err, ErrCorrupt, "no previous generation")
	if rep.Restored || !errors.Is(rep.Damage, ErrCorrupt) {
		t.Fatalf("report %+v", rep)
	}
}

// TestRecoverHeaderMidRotation: the damaged header's last write added a
// key generation (a rotation's first step) and some sessions were
// re-sealed under it. The previous generation of the header lacks that
// key: RecoverHeader lists those sessions and refuses; forced, it
// restores, those sessions do not open, and Recover brings each back from
// its own previous generation (sealed under the old key).
func TestRecoverHeaderMidRotation(t *testing.T) {
	ctx := context.Background()
	v, b := newFileVault(t, nil)
	const n = 10
	sealN(t, v, n)
	// A rotation's first step, then three sessions re-sealed.
	err := v.rewrapAll(ctx, func(h *header) (map[uint32]*secmem.Buffer, error) {
		n := h.current() + 1
		key := secmem.New(keySize)
		rand.Read(key.Bytes())
		h.gens = append(h.gens, n)
		return map[uint32]*secmem.Buffer{n: key}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s02", "s05", "s07"} {
		if c, err := v.reseal(ctx, name); err != nil || c != 1 {
			t.Fatalf("reseal %s: %d, %v", name, c, err)
		}
	}
	damageHeader(t, b, 45)
	cur0, prev0 := headerFiles(t, b)

	_, rep, err := RecoverHeader(ctx, b, false, cheap(testPass)...)
	var hre *HeaderRecoveryError
	if !errors.As(err, &hre) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("RecoverHeader: %v, want a *HeaderRecoveryError matching ErrCorrupt", err)
	}
	if fmt.Sprint(hre.Unopenable) != "[s02 s05 s07]" || rep.Restored || rep.Sessions != n {
		t.Fatalf("refusal lists %v (report %+v), want [s02 s05 s07]", hre.Unopenable, rep)
	}
	for _, u := range rep.Unopenable {
		var fe *FormatError
		if !errors.As(u.Err, &fe) || fe.Field != "generation" || !u.PreviousOpens {
			t.Fatalf("%s: %v (previous opens: %v), want an unknown generation whose previous generation opens", u.Name, u.Err, u.PreviousOpens)
		}
	}
	if cur, prev := headerFiles(t, b); !bytes.Equal(cur, cur0) || !bytes.Equal(prev, prev0) {
		t.Fatal("a refused recovery changed the header files")
	}

	rv, rep, err := RecoverHeader(ctx, b, true, cheap(testPass)...)
	if err != nil || !rep.Restored || len(rep.Unopenable) != 3 {
		t.Fatalf("forced: %+v, %v", rep, err)
	}
	defer rv.Close()
	// Forced: the damaged header, which holds generation 2's key, is kept
	// as the previous generation.
	if cur, prev := headerFiles(t, b); !bytes.Equal(cur, prev0) || !bytes.Equal(prev, cur0) {
		t.Fatal("after a forced restore the damaged header is not the previous generation")
	}
	if _, _, err := rv.Store("s05").Open(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("s05 after a forced restore: %v, want ErrCorrupt", err)
	}
	for _, name := range []string{"s02", "s05", "s07"} {
		if ok, err := rv.Recover(ctx, name); err != nil || !ok {
			t.Fatalf("Recover %s: %v, %v", name, ok, err)
		}
	}
	allOpen(t, rv, n)
	if in := rv.Info(); in.Rotating || in.Current != 1 {
		t.Fatalf("restored header: %+v, want generation 1 only", in)
	}
}

// TestRecoverHeaderTamperedMAC: a header whose checksum is valid but
// whose MAC fails once the key slot opened (an edit) is damage too.
func TestRecoverHeaderTamperedMAC(t *testing.T) {
	ctx := context.Background()
	v, b := newFileVault(t, nil)
	sealN(t, v, 2)
	hdr, _ := headerFiles(t, b)
	hdr[len(hdr)-sumSize-1] ^= 1 // the last byte of the MAC
	putHeader(t, b, fixChecksum(hdr))
	_, err := Open(ctx, b, cheap(testPass)...)
	wantErr(t, err, ErrCorrupt, "tampered MAC")
	rv, rep, err := RecoverHeader(ctx, b, false, cheap(testPass)...)
	if err != nil || !rep.Restored {
		t.Fatalf("%+v, %v", rep, err)
	}
	allOpen(t, rv, 2)
	rv.Close()
}

// TestRecoverHeaderNewerVersion: a well-formed header of a format version
// this package does not read is not damage: nothing is restored.
func TestRecoverHeaderNewerVersion(t *testing.T) {
	ctx := context.Background()
	_, b := newFileVault(t, nil)
	hdr, _ := headerFiles(t, b)
	binary.BigEndian.PutUint16(hdr[magicSize:], headerVersionService+1)
	hdr = fixChecksum(hdr)
	putHeader(t, b, hdr)
	_, rep, err := RecoverHeader(ctx, b, true, cheap(testPass)...)
	wantErr(t, err, ErrUnsupportedVersion, "newer format")
	if rep.Restored || rep.Damage != nil {
		t.Fatalf("report %+v", rep)
	}
	if cur, _ := headerFiles(t, b); !bytes.Equal(cur, hdr) {
		t.Fatal("a newer header was replaced")
	}
}

// TestRecoverHeaderMemory: the memory backend keeps a previous
// generation too.
func TestRecoverHeaderMemory(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	sealN(t, v, 4)
	hdr, ver, _ := b.Get(ctx, backends.HeaderName)
	hdr[20] ^= 1
	if _, err := b.Put(ctx, backends.HeaderName, hdr, ver); err != nil {
		t.Fatal(err)
	}
	// That Put made the good header the previous generation.
	rv, rep, err := RecoverHeader(ctx, b, false, cheap(testPass)...)
	if err != nil || !rep.Restored {
		t.Fatalf("%+v, %v", rep, err)
	}
	allOpen(t, rv, 4)
	rv.Close()
}
