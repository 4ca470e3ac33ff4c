package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sessionvault/sessionvault/internal/figures"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/kdf"
)

func TestCreateOpenSealOpen(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	if len(v.ID()) != 32 {
		t.Fatalf("ID %q", v.ID())
	}
	seal(t, v, "alice", `{"tokens":1}`)
	if got := open(t, v, "alice"); got != `{"tokens":1}` {
		t.Fatalf("open = %q", got)
	}
	v2 := mustOpen(t, b, cheap(testPass)...)
	if v2.ID() != v.ID() {
		t.Fatal("reopened vault has another id")
	}
	if got := open(t, v2, "alice"); got != `{"tokens":1}` {
		t.Fatalf("open after reopen = %q", got)
	}
	names, err := v2.Sessions(ctx)
	if err != nil || len(names) != 1 || names[0] != "alice" {
		t.Fatalf("Sessions = %v, %v", names, err)
	}
	_, _, err = v2.Store("bob").Open(ctx)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
}

func TestOpenRunsKDFOnce(t *testing.T) {
	v, b := newVault(t)
	for i := range 50 {
		seal(t, v, fmt.Sprintf("s%02d", i), "x")
	}
	before := kdf.Derivations()
	v2 := mustOpen(t, b, cheap(testPass)...)
	for i := range 50 {
		open(t, v2, fmt.Sprintf("s%02d", i))
		seal(t, v2, fmt.Sprintf("s%02d", i), "y")
	}
	got := kdf.Derivations() - before
	fig := figures.New("vault/kdf-once")
	fig.Add("session_operations", 100)
	fig.Add("kdf_runs", int64(got))
	fig.Report(t)
	if got != 1 {
		t.Fatalf("Open and 100 session operations ran argon2id %d times, want 1", got)
	}
}

func TestWrongPassphraseIsNotCorruption(t *testing.T) {
	_, b := newVault(t)
	_, err := Open(context.Background(), b, cheap("wrong passphrase")...)
	wantErr(t, err, ErrWrongKey, "wrong passphrase")
	if !strings.HasPrefix(err.Error(), "vault: ") {
		t.Errorf("message %q lacks the package prefix", err)
	}
	if strings.Contains(err.Error(), "wrong passphrase\"") {
		t.Errorf("message echoes the passphrase: %v", err)
	}
}

func TestPolicyEnforcedOnOpen(t *testing.T) {
	_, b := newVault(t) // made with insecure test parameters
	before := kdf.Derivations()
	_, err := Open(context.Background(), b, WithPassphrase([]byte(testPass)))
	wantErr(t, err, ErrPolicy, "insecure params under the default policy")
	if !errors.Is(err, kdf.ErrOutOfPolicy) {
		t.Fatalf("%v does not match kdf.ErrOutOfPolicy", err)
	}
	if kdf.Derivations() != before {
		t.Fatal("a refused header ran argon2id")
	}
	// The same explicit policy opens it.
	mustOpen(t, b, WithPassphrase([]byte(testPass)), WithKDFPolicy(kdf.InsecurePolicyForTesting))
}

func TestCreateRefusesExisting(t *testing.T) {
	_, b := newVault(t)
	_, err := Create(context.Background(), b, cheap(testPass)...)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Create over a vault: %v", err)
	}
	b2 := memory.New()
	if _, err := b2.Put(context.Background(), "stray", []byte("x"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(context.Background(), b2, cheap(testPass)...); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over sessions: %v", err)
	}
	if _, err := Create(context.Background(), memory.New()); err == nil {
		t.Fatal("Create without credentials succeeded")
	}
	if _, err := Create(context.Background(), memory.New(), WithPassphrase(nil)); err == nil {
		t.Fatal("Create with an empty passphrase succeeded")
	}
	if _, err := Create(context.Background(), memory.New(), WithPassphrase([]byte("x")), WithKDFParams(kdf.Params{Time: 1, MemoryKiB: 64, Threads: 1})); !errors.Is(err, ErrPolicy) {
		t.Fatalf("Create below the floor: %v", err)
	}
}

func TestPassphraseCopied(t *testing.T) {
	pass := []byte(testPass)
	b := memory.New()
	v, err := Create(context.Background(), b, WithPassphrase(pass), WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range pass {
		pass[i] = 0
	}
	mustOpen(t, b, cheap(testPass)...)
}

func TestRenamedSessionRejected(t *testing.T) {
	v, b := newVault(t)
	seal(t, v, "alice", "secret")
	blob, _, _ := b.Get(context.Background(), "alice")
	if _, err := b.Put(context.Background(), "bob", blob, backends.Absent); err != nil {
		t.Fatal(err)
	}
	_, _, err := v.Store("bob").Open(context.Background())
	wantErr(t, err, ErrCorrupt, "session renamed")
}

func TestSessionFromAnotherVaultRejected(t *testing.T) {
	v1, b1 := newVault(t)
	v2, b2 := newVault(t)
	seal(t, v1, "alice", "secret")
	seal(t, v2, "alice", "other")
	blob, _, _ := b1.Get(context.Background(), "alice")
	if _, err := b2.Put(context.Background(), "alice", blob, backends.Any); err != nil {
		t.Fatal(err)
	}
	_, _, err := v2.Store("alice").Open(context.Background())
	wantErr(t, err, ErrCorrupt, "session from another vault")
}

func TestSizeCaps(t *testing.T) {
	v, b := newVault(t)
	ctx := context.Background()
	_, err := v.Store("big").Seal(ctx, make([]byte, MaxPlaintextSize+1), backends.Any)
	wantErr(t, err, ErrTooLarge, "plaintext over the cap")
	if !errors.Is(err, backends.ErrTooLarge) {
		t.Fatal("ErrTooLarge does not match backends.ErrTooLarge")
	}
	if _, err := v.Store("max").Seal(ctx, make([]byte, MaxPlaintextSize), backends.Any); err != nil {
		t.Fatalf("plaintext at the cap: %v", err)
	}
	open(t, v, "max")
	if MaxSealedSize > backends.MaxBlobSize {
		t.Fatalf("MaxSealedSize %d > backends.MaxBlobSize %d", MaxSealedSize, backends.MaxBlobSize)
	}
	huge := make([]byte, MaxSealedSize+1)
	copy(huge, envelopeMagic)
	_, err = v.OpenSession(ctx, "huge", huge)
	wantErr(t, err, ErrTooLarge, "blob over the cap")
	_, err = parseHeader(make([]byte, maxHeaderSize+1), kdf.DefaultPolicy)
	wantErr(t, err, ErrTooLarge, "header over the cap")
	for _, name := range []string{"", ".vault", ".hidden", "a/b", "-x", strings.Repeat("a", backends.MaxNameLen+1)} {
		if _, err := v.Store(name).Seal(ctx, []byte("x"), backends.Any); !errors.Is(err, backends.ErrInvalidName) {
			t.Errorf("Seal(%q): %v, want ErrInvalidName", name, err)
		}
		if _, _, err := v.Store(name).Open(ctx); !errors.Is(err, backends.ErrInvalidName) {
			t.Errorf("Open(%q): %v, want ErrInvalidName", name, err)
		}
	}
	_ = b
}

func TestMaxHeaderArithmetic(t *testing.T) {
	h := &header{gens: make([]uint32, maxGenerations)}
	for i := range h.gens {
		h.gens[i] = uint32(i + 1)
	}
	wrapped := make([]byte, maxGenerations*keySize+tagSize)
	for i := range maxSlots {
		s := slot{kind: KeychainSlot, wrapped: wrapped}
		if i < maxPassphraseSlots {
			s.kind = PassphraseSlot
			s.params = kdf.Default
		}
		s.id[0] = byte(i)
		h.slots = append(h.slots, s)
	}
	b := h.encode()
	if len(b) != h.size() || len(b) > maxHeaderSize {
		t.Fatalf("largest v1 header is %d bytes (size() %d), cap %d", len(b), h.size(), maxHeaderSize)
	}
	if len(b) != 4936 {
		t.Errorf("largest v1 header is %d bytes; limits.go says 4,936", len(b))
	}
	if _, err := parseHeader(b, kdf.DefaultPolicy); err != nil {
		t.Fatalf("largest header does not parse: %v", err)
	}
}

func TestCloseWipes(t *testing.T) {
	v, _ := newVault(t)
	seal(t, v, "a", "x")
	var keys [][]byte
	for _, g := range v.gens {
		keys = append(keys, g.key.Bytes())
	}
	aead := v.gens[0].aead
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if v.gens != nil || len(v.keks) != 0 || v.pass != nil {
		t.Fatal("Close left keys")
	}
	// The AEAD's own copy of the session key is zero: it now seals as
	// an all-zero key does.
	zero := newAEADForKey(t, make([]byte, keySize))
	nonce := make([]byte, nonceSize)
	if !bytes.Equal(aead.Seal(nil, nonce, []byte("p"), nil), zero.Seal(nil, nonce, []byte("p"), nil)) {
		t.Fatal("Close left the session key inside the AEAD")
	}
	_ = keys
	ctx := context.Background()
	if _, err := v.Store("a").Seal(ctx, []byte("x"), "v"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Seal after Close: %v", err)
	}
	if _, _, err := v.Store("a").Open(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	if _, err := v.Sessions(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sessions after Close: %v", err)
	}
	if err := v.RotateKey(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("RotateKey after Close: %v", err)
	}
	if in := v.Info(); in.KeysLocked || in.ID == "" {
		t.Fatalf("Info after Close: %+v", in)
	}
}
