package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/kdf"
)

// testSealer is a KEKSealer whose "device" is a key in memory. The real
// TPM2 sealer (package tpm) is tested against a real software TPM there;
// here the vault's handling of TPM slots is tested with a device that
// can be wiped, replaced or made unavailable on demand. Seal encrypts
// the key under the device key, so the sealed bytes never hold it.
type testSealer struct {
	mu          sync.Mutex
	device      [32]byte
	unavailable bool
	seals       int
	unseals     int
}

var errTestUnavailable = errors.New("test sealer: no device")

func newTestSealer() *testSealer {
	s := &testSealer{}
	rand.Read(s.device[:])
	return s
}

// wipe gives the device a new key: what it sealed before no longer opens.
func (s *testSealer) wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	rand.Read(s.device[:])
}

func (s *testSealer) Seal(ctx context.Context, kek []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable {
		return nil, errTestUnavailable
	}
	s.seals++
	aead, _ := chacha20poly1305.NewX(s.device[:])
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, kek, nil), nil
}

func (s *testSealer) Unseal(ctx context.Context, sealed []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable {
		return nil, errTestUnavailable
	}
	s.unseals++
	aead, _ := chacha20poly1305.NewX(s.device[:])
	if len(sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("test sealer: short blob: %w", ErrWrongKey)
	}
	kek, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, fmt.Errorf("test sealer: sealed on another device: %w", ErrWrongKey)
	}
	return kek, nil
}

// tpmOnly opens with the sealer alone, under the test KDF policy (the
// vault's passphrase slot is a cheap one).
func tpmOnly(s KEKSealer) []Option {
	return []Option{WithTPM(s), WithInsecureKDFForTesting()}
}

func headerVersionOf(t *testing.T, b backends.Backend) uint16 {
	t.Helper()
	blob, _, err := b.Get(context.Background(), backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(blob[magicSize:])
}

func TestTPMSlotCreateOpen(t *testing.T) {
	ctx := context.Background()
	s := newTestSealer()
	v, b := newVault(t, cheap(testPass, WithTPM(s))...)
	seal(t, v, "a", "alpha")
	if got := headerVersionOf(t, b); got != headerVersionTPM {
		t.Fatalf("header version %d, want %d", got, headerVersionTPM)
	}
	in := v.Info()
	if in.FormatVersion != 2 || len(in.Slots) != 2 || in.Slots[0].Kind != TPMSlot || in.Slots[1].Kind != PassphraseSlot {
		t.Fatalf("info %+v", in)
	}
	if len(in.Slots[0].Sealed) == 0 || len(in.Slots[0].Sealed) > MaxSealedKeySize {
		t.Fatalf("sealed key of %d bytes", len(in.Slots[0].Sealed))
	}
	v.Close()

	// The TPM alone opens it, without any argon2id run.
	vt := mustOpen(t, b, tpmOnly(s)...)
	if open(t, vt, "a") != "alpha" || vt.Info().UnlockedBy != in.Slots[0].ID {
		t.Fatal("TPM slot did not unlock")
	}
	// The passphrase alone too.
	vp := mustOpen(t, b, cheap(testPass)...)
	if open(t, vp, "a") != "alpha" || vp.Info().UnlockedBy != in.Slots[1].ID {
		t.Fatal("passphrase slot did not unlock")
	}
	_, err := Open(ctx, b, tpmOnly(newTestSealer())...)
	wantErr(t, err, ErrWrongKey, "another device")
}

func TestTPMSlotFallsBackToPassphrase(t *testing.T) {
	ctx := context.Background()
	s := newTestSealer()
	v, b := newVault(t, cheap(testPass, WithTPM(s))...)
	seal(t, v, "a", "alpha")
	v.Close()

	// Wiped device: the passphrase recovers.
	s.wipe()
	_, err := Open(ctx, b, tpmOnly(s)...)
	wantErr(t, err, ErrWrongKey, "wiped device, no passphrase")
	vp := mustOpen(t, b, cheap(testPass, WithTPM(s))...)
	if open(t, vp, "a") != "alpha" {
		t.Fatal("passphrase did not recover")
	}
	if vp.Info().Slots[1].ID != vp.Info().UnlockedBy {
		t.Fatal("not unlocked by the passphrase slot")
	}

	// No device: a typed error naming the cause, not a wrong key.
	s.unavailable = true
	_, err = Open(ctx, b, tpmOnly(s)...)
	if !errors.Is(err, errTestUnavailable) || errors.Is(err, ErrWrongKey) {
		t.Fatalf("no device: %v", err)
	}
	var se *SlotError
	if !errors.As(err, &se) || se.Kind != TPMSlot {
		t.Fatalf("no device: %v is not a TPM *SlotError", err)
	}
	mustOpen(t, b, cheap(testPass, WithTPM(s))...)
}

func TestAddTPMSlotAndRemove(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	seal(t, v, "a", "alpha")
	if got := headerVersionOf(t, b); got != formatVersion {
		t.Fatalf("passphrase-only vault has header version %d, want 1", got)
	}
	s := newTestSealer()
	id, err := v.AddTPMSlot(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := headerVersionOf(t, b); got != headerVersionTPM {
		t.Fatalf("after AddTPMSlot: header version %d, want 2", got)
	}
	vt := mustOpen(t, b, tpmOnly(s)...)
	if open(t, vt, "a") != "alpha" || vt.Info().UnlockedBy != id {
		t.Fatal("added TPM slot does not unlock")
	}
	// The passphrase slot, wrapped under header version 1, still opens.
	mustOpen(t, b, cheap(testPass)...)
	if _, err := v.AddTPMSlot(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddTPMSlot(ctx, s); err == nil {
		t.Fatal("a third TPM slot was added")
	}
	for _, si := range v.Info().Slots {
		if si.Kind == TPMSlot {
			if err := v.RemoveSlot(ctx, si.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := headerVersionOf(t, b); got != formatVersion {
		t.Fatalf("after removing the TPM slots: header version %d, want 1", got)
	}
	_, err = Open(ctx, b, tpmOnly(s)...)
	wantErr(t, err, ErrWrongKey, "removed TPM slot")
	mustOpen(t, b, cheap(testPass)...)
}

func TestTPMSlotRotate(t *testing.T) {
	ctx := context.Background()
	s := newTestSealer()
	v, b := newVault(t, cheap(testPass, WithTPM(s))...)
	seal(t, v, "a", "alpha")
	v.Close()

	// Opened with the TPM only, the passphrase slot cannot be re-wrapped.
	vt := mustOpen(t, b, tpmOnly(s)...)
	err := vt.RotateKey(ctx, nil)
	wantErr(t, err, ErrWrongKey, "rotate without the passphrase")

	// Opened with the passphrase and given the TPM, every slot re-wraps:
	// the TPM unseals the key of its slot (no new seal).
	seals := s.seals
	vb := mustOpen(t, b, cheap(testPass, WithTPM(s))...)
	if err := vb.RotateKey(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if vb.Info().Current != 2 || s.seals != seals {
		t.Fatalf("generation %d, %d new seals", vb.Info().Current, s.seals-seals)
	}
	if open(t, mustOpen(t, b, tpmOnly(s)...), "a") != "alpha" {
		t.Fatal("TPM slot after rotation")
	}
	if open(t, mustOpen(t, b, cheap(testPass)...), "a") != "alpha" {
		t.Fatal("passphrase slot after rotation")
	}
	// ChangePassphrase keeps the TPM slot working.
	if err := vb.ChangePassphrase(ctx, []byte("new one"), insecureTestParams); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, b, tpmOnly(s)...)
	mustOpen(t, b, cheap("new one")...)
}

// TestTPMSlotCreateFails: a sealer that fails leaves no vault behind.
func TestTPMSlotCreateFails(t *testing.T) {
	ctx := context.Background()
	s := newTestSealer()
	s.unavailable = true
	b, _ := newMemory()
	_, err := Create(ctx, b, cheap(testPass, WithTPM(s))...)
	if !errors.Is(err, errTestUnavailable) {
		t.Fatalf("Create with no device: %v", err)
	}
	if _, _, err := b.Get(ctx, backends.HeaderName); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("a header was written: %v", err)
	}
}

// tpmHeader returns the encoding of a header with a passphrase slot and
// the given TPM slots' sealed keys, signed with a fresh key.
func tpmHeader(t *testing.T, sealed ...[]byte) (*header, []byte) {
	t.Helper()
	h := &header{gens: []uint32{1}}
	rand.Read(h.id[:])
	key := make([]byte, keySize)
	rand.Read(key)
	p := slot{kind: PassphraseSlot, params: kdf.Default}
	p.id[0] = 1
	wrapSlot(h, &p, key, [][]byte{key})
	h.slots = append(h.slots, p)
	for i, b := range sealed {
		s := slot{kind: TPMSlot, sealed: b}
		s.id[0] = byte(2 + i)
		wrapSlot(h, &s, key, [][]byte{key})
		h.slots = append(h.slots, s)
	}
	h.sign(key)
	return h, h.encode()
}

// rechecksum fixes the SHA-256 checksum of a header blob changed in
// place, so that the parser reaches the field under test.
func rechecksum(b []byte) []byte {
	body := b[:len(b)-sumSize]
	sum := sha256.Sum256(body)
	return append(append([]byte(nil), body...), sum[:]...)
}

func TestParseTPMSlotBounds(t *testing.T) {
	f := figures.New("vault/tpm-slot-bounds")
	f.Declare("typed")
	defer f.Report(t)
	// typed fails the test unless err is want (and no other category).
	typed := func(err, want error, what string) {
		t.Helper()
		wantErr(t, err, want, what)
		f.Inc("typed")
	}
	pol := kdf.DefaultPolicy
	h, good := tpmHeader(t, []byte("sealed"))
	if got, err := parseHeader(good, pol); err != nil || !bytes.Equal(got.encode(), good) {
		t.Fatalf("valid v2 header: %v", err)
	}
	_ = h

	// A TPM slot in a header that says version 1.
	b := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(b[magicSize:], formatVersion)
	_, err := parseHeader(rechecksum(b), pol)
	typed(err, ErrCorrupt, "TPM slot in a v1 header")

	// Version 2 without a TPM slot.
	_, v1 := tpmHeader(t)
	b = append([]byte(nil), v1...)
	binary.BigEndian.PutUint16(b[magicSize:], headerVersionTPM)
	_, err = parseHeader(rechecksum(b), pol)
	typed(err, ErrCorrupt, "v2 header without a TPM slot")

	// A version from the future (3 is the keychain-service version).
	binary.BigEndian.PutUint16(b[magicSize:], headerVersionService+1)
	_, err = parseHeader(rechecksum(b), pol)
	typed(err, ErrUnsupportedVersion, "version 4")

	// Sealed key lengths: empty, above the cap, longer than the blob.
	_, err = parseHeader(tpmRaw(t, 0), pol)
	typed(err, ErrCorrupt, "empty sealed key")
	_, err = parseHeader(tpmRaw(t, MaxSealedKeySize+1), pol)
	typed(err, ErrCorrupt, "sealed key above the cap")
	_, max := tpmHeader(t, make([]byte, MaxSealedKeySize))
	if _, err := parseHeader(max, pol); err != nil {
		t.Fatalf("sealed key at the cap: %v", err)
	}
	_, err = parseHeader(tpmRaw(t, 0xffff), pol)
	typed(err, ErrCorrupt, "sealed key length past the end")

	// More TPM slots than the format allows.
	_, three := tpmHeader(t, []byte("a"), []byte("b"), []byte("c"))
	_, err = parseHeader(three, pol)
	typed(err, ErrCorrupt, "three TPM slots")
}

// tpmRaw returns a v2 header whose TPM slot claims a sealed key of n
// bytes while holding 6, checksum fixed.
func tpmRaw(t *testing.T, n int) []byte {
	t.Helper()
	h, b := tpmHeader(t, []byte("sealed"))
	off := h.genPrefixLen() + 1 + h.slots[0].fixedLen() + nonceSize + len(h.slots[0].wrapped) + 1 + idSize
	if got := binary.BigEndian.Uint16(b[off:]); got != 6 {
		t.Fatalf("sealed length field at %d reads %d", off, got)
	}
	b = append([]byte(nil), b...)
	binary.BigEndian.PutUint16(b[off:], uint16(n))
	return rechecksum(b)
}

func TestMaxHeaderArithmeticV2(t *testing.T) {
	h := &header{gens: make([]uint32, maxGenerations)}
	for i := range h.gens {
		h.gens[i] = uint32(i + 1)
	}
	wrapped := make([]byte, maxGenerations*keySize+tagSize)
	for i := range maxSlots {
		s := slot{kind: KeychainSlot, wrapped: wrapped}
		switch {
		case i < maxPassphraseSlots:
			s.kind = PassphraseSlot
			s.params = kdf.Default
		case i < maxPassphraseSlots+maxTPMSlots:
			s.kind = TPMSlot
			s.sealed = make([]byte, MaxSealedKeySize)
		}
		s.id[0] = byte(i)
		h.slots = append(h.slots, s)
	}
	b := h.encode()
	if len(b) != h.size() || len(b) > maxHeaderSize {
		t.Fatalf("largest v2 header is %d bytes (size() %d), cap %d", len(b), h.size(), maxHeaderSize)
	}
	if len(b) != 6988 {
		t.Errorf("largest v2 header is %d bytes; limits.go says 6,988", len(b))
	}
	if _, err := parseHeader(b, kdf.DefaultPolicy); err != nil {
		t.Fatalf("largest v2 header does not parse: %v", err)
	}
}
