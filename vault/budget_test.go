package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/kdf"
)

// rewriteSlots rewrites the header in b as someone who can write it
// would: the same vault id and generations, its slots kept (keep) or
// dropped, then passphrase slots with params appended (random salt,
// check, nonce and wrapped keys: they open nothing), the MAC made with key
// when one is given (else left as it was: nothing checks it before a slot
// opens), the checksum recomputed.
func rewriteSlots(t *testing.T, b backends.Backend, keep bool, key []byte, params ...kdf.Params) {
	t.Helper()
	ctx := context.Background()
	blob, ver, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(blob, kdf.InsecurePolicyForTesting)
	if err != nil {
		t.Fatal(err)
	}
	if !keep {
		h.slots = nil
	}
	for _, p := range params {
		s := slot{kind: PassphraseSlot, id: newSlotID(h), params: p, wrapped: make([]byte, len(h.gens)*keySize+tagSize)}
		rand.Read(s.salt[:])
		rand.Read(s.check[:])
		rand.Read(s.nonce[:])
		rand.Read(s.wrapped)
		h.slots = append(h.slots, s)
	}
	if key != nil {
		h.sign(key)
	}
	if _, err := b.Put(ctx, backends.HeaderName, h.encode(), ver); err != nil {
		t.Fatal(err)
	}
}

// wantBudgetRefusal checks that err is the typed budget refusal: ErrPolicy,
// kdf.ErrOverBudget, a *kdf.BudgetError, never a wrong key, and a message
// that says how to allow it.
func wantBudgetRefusal(t *testing.T, err error, what string) {
	t.Helper()
	var be *kdf.BudgetError
	var pe *PolicyError
	switch {
	case err == nil:
		t.Fatalf("%s: accepted", what)
	case errors.Is(err, ErrWrongKey):
		t.Fatalf("%s: reported as a wrong key: %v", what, err)
	case !errors.Is(err, ErrPolicy) || !errors.Is(err, kdf.ErrOverBudget) || !errors.Is(err, kdf.ErrOutOfPolicy):
		t.Fatalf("%s: %v does not match ErrPolicy, kdf.ErrOverBudget and kdf.ErrOutOfPolicy", what, err)
	case !errors.As(err, &be) || !errors.As(err, &pe):
		t.Fatalf("%s: %v: no *kdf.BudgetError in a *PolicyError", what, err)
	case !strings.Contains(err.Error(), "vault.WithKDFPolicy(kdf.DefaultPolicy.WithBudget("):
		t.Fatalf("%s: %q does not say how to allow it", what, err)
	}
}

// TestKDFBudgetForgedHeader: a header forged with four passphrase slots at
// the ceiling (t=10, 1 GiB, p=16: 25.6 s and 2.1 GB before the budget) is
// refused before any derivation, in microseconds, allocating kilobytes,
// whatever the credentials; with the budget raised to what it needs the
// same header is no longer refused for its cost (the check, not something
// else, was the refusal).
func TestKDFBudgetForgedHeader(t *testing.T) {
	ctx := context.Background()
	v, b := newFileVault(t, nil)
	seal(t, v, "main", "plaintext")
	v.Close()
	dir := b.Path()
	rewriteSlots(t, b, false, nil, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling)

	fig := figures.New("vault/kdf-budget-forged")
	fig.Declare("cases", "derivations", "max_alloc_kib", "max_micros")
	ks := newKeyStore()
	for _, c := range []struct {
		what string
		opts []Option
	}{
		{"passphrase", []Option{WithPassphrase([]byte(testPass))}},
		{"passphrase and key store", []Option{WithPassphrase([]byte(testPass)), WithKeyStore(ks)}},
		{"passphrase, insecure test policy", []Option{WithPassphrase([]byte(testPass)), WithKDFPolicy(kdf.InsecurePolicyForTesting)}},
	} {
		before := kdf.Derivations()
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		_, err := Open(ctx, b, c.opts...)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&ms1)
		alloc := ms1.TotalAlloc - ms0.TotalAlloc
		t.Logf("%s: %v, %d KiB allocated, %d derivations: %v", c.what, elapsed.Round(time.Microsecond), alloc>>10, kdf.Derivations()-before, err)
		fig.Inc("cases")
		fig.Add("derivations", int64(kdf.Derivations()-before))
		fig.Max("max_alloc_kib", int64(alloc>>10))
		fig.Max("max_micros", elapsed.Microseconds())
		wantBudgetRefusal(t, err, c.what)
		if n := kdf.Derivations() - before; n != 0 {
			t.Errorf("%s: %d derivations before the refusal", c.what, n)
		}
		if alloc > 1<<20 {
			t.Errorf("%s: %d KiB allocated before the refusal", c.what, alloc>>10)
		}
		if elapsed > 100*time.Millisecond {
			t.Errorf("%s: refused after %v", c.what, elapsed)
		}
	}
	// Without a passphrase nothing can be derived: no budget refusal, the
	// keychain simply has no slot here.
	_, err := Open(ctx, b, WithKeyStore(ks))
	wantErr(t, err, ErrWrongKey, "key store only")

	// The figures in the message are the header's: raised to exactly
	// those, the policy lets the header through to the slots (checked
	// here without deriving 4 GiB: CheckBudget is what Open runs).
	_, err = Open(ctx, b, WithPassphrase([]byte(testPass)))
	var be *kdf.BudgetError
	if !errors.As(err, &be) {
		t.Fatal(err)
	}
	if want := kdf.Cost(kdf.Ceiling, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling); be.Need != want || be.Derivations != 4 {
		t.Fatalf("BudgetError need %+v over %d, want %+v over 4", be.Need, be.Derivations, want)
	}
	if err := kdf.DefaultPolicy.WithBudget(be.Need).CheckBudget([]kdf.Params{kdf.Ceiling, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling}); err != nil {
		t.Fatalf("the budget the message names still refuses: %v", err)
	}

	// The same in a real second process: its peak RSS (VmHWM, the high
	// water mark of its own address space; ru_maxrss would include the
	// parent's, inherited through vfork and exec) against a process that
	// does nothing, and against one that opens a real vault at the floor
	// parameters (the control: the measure does see argon2id's 19 MiB).
	legit := filepath.Join(t.TempDir(), "legit")
	lb, err := file.New(legit)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	lv, err := Create(ctx, lb, WithPassphrase([]byte(testPass)), WithKDFParams(kdf.Floor))
	if err != nil {
		t.Fatal(err)
	}
	lv.Close()
	idle := budgetChild(t, "")
	forged := budgetChild(t, dir)
	control := budgetChild(t, legit)
	t.Logf("child peak RSS: idle %d KiB; forged header %d KiB, open %v (%s); floor-parameter vault %d KiB, open %v (%s)",
		idle.rssKiB, forged.rssKiB, forged.open, forged.out, control.rssKiB, control.open.Round(time.Millisecond), control.out)
	fig.Add("child_idle_rss_kib", idle.rssKiB)
	fig.Add("child_forged_rss_kib", forged.rssKiB)
	fig.Add("child_forged_open_micros", forged.open.Microseconds())
	fig.Add("child_control_rss_kib", control.rssKiB)
	fig.Report(t)
	if !strings.Contains(forged.out, "refused over budget") {
		t.Errorf("forged child: %q", forged.out)
	}
	if !strings.Contains(control.out, "opened") {
		t.Errorf("control child: %q", control.out)
	}
	if d := forged.rssKiB - idle.rssKiB; d > 4<<10 {
		t.Errorf("forged header: child peak RSS %d KiB above an idle child", d)
	}
	if d := control.rssKiB - idle.rssKiB; d < 16<<10 {
		t.Errorf("control: an open at the floor (19 MiB) peaked only %d KiB above an idle child: the measure is blind", d)
	}
	if forged.rssKiB > 32<<10 {
		t.Errorf("forged header: child peak RSS %d KiB", forged.rssKiB)
	}
	if forged.open > 250*time.Millisecond {
		t.Errorf("forged header: the child's open took %v", forged.open)
	}
}

const envBudgetChild = "SESSIONVAULT_VAULT_TEST_BUDGET_CHILD"

type childRun struct {
	rssKiB int64
	open   time.Duration // the child's own measure of its Open
	out    string
}

// TestKDFBudgetChild is the second process of TestKDFBudgetForgedHeader.
func TestKDFBudgetChild(t *testing.T) {
	dir := os.Getenv(envBudgetChild)
	if dir == "" {
		t.Skip("runs as a child of TestKDFBudgetForgedHeader")
	}
	defer func() { fmt.Println("VmHWM", peakRSSKiB()); os.Exit(0) }()
	if dir != "-" {
		start := time.Now()
		defer func() { fmt.Println("elapsed", time.Since(start).Microseconds()) }()
		b, err := file.New(dir)
		if err != nil {
			fmt.Println("backend:", err)
			os.Exit(1)
		}
		v, err := Open(context.Background(), b, WithPassphrase([]byte(testPass)))
		switch {
		case err == nil:
			v.Close()
			fmt.Println("opened")
		case errors.Is(err, kdf.ErrOverBudget):
			fmt.Println("refused over budget")
		default:
			fmt.Println("error:", err)
		}
	}
}

// TestKDFBudgetLegitVaults: vaults up to the budget open, with every slot
// tried (the passphrase of the last slot); a slot added or changed past
// it is refused before its derivation and leaves the header as it was;
// Create refuses parameters past it. The budget here is three slots of
// cheap parameters, so that the test runs in milliseconds; the default
// budget's arithmetic (four slots at kdf.Default) is checked in package
// kdf and by TestKDFBudgetDefaultSlots.
func TestKDFBudgetLegitVaults(t *testing.T) {
	ctx := context.Background()
	p := insecureTestParams
	pol := kdf.InsecurePolicyForTesting.WithBudget(kdf.Cost(p, p, p))
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := Create(ctx, b, WithPassphrase([]byte("first")), WithKDFParams(p), WithKDFPolicy(pol))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	seal(t, v, "main", "plaintext")
	for _, pass := range []string{"second", "third"} {
		if _, err := v.AddPassphraseSlot(ctx, []byte(pass), p); err != nil {
			t.Fatal(err)
		}
	}
	hdr := func() []byte {
		blob, _, err := b.Get(ctx, backends.HeaderName)
		if err != nil {
			t.Fatal(err)
		}
		return blob
	}
	before, n := hdr(), kdf.Derivations()
	_, err = v.AddPassphraseSlot(ctx, []byte("fourth"), p)
	wantBudgetRefusal(t, err, "a fourth slot")
	big := kdf.Params{Time: 2, MemoryKiB: p.MemoryKiB, Threads: 1}
	err = v.ChangePassphrase(ctx, []byte("costlier"), big)
	wantBudgetRefusal(t, err, "a costlier passphrase")
	if kdf.Derivations() != n || string(hdr()) != string(before) {
		t.Fatal("a refused slot change derived a key or wrote the header")
	}
	// The third passphrase opens: the first two slots are tried first.
	n = kdf.Derivations()
	v3 := mustOpen(t, b, WithPassphrase([]byte("third")), WithKDFPolicy(pol))
	if got := kdf.Derivations() - n; got != 3 {
		t.Fatalf("opening with the last slot's passphrase ran %d derivations, want 3", got)
	}
	if got := open(t, v3, "main"); got != "plaintext" {
		t.Fatalf("session = %q", got)
	}
	// Changing a passphrase at the same cost stays within the budget.
	if err := v3.ChangePassphrase(ctx, []byte("third, changed"), p); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, b, WithPassphrase([]byte("third, changed")), WithKDFPolicy(pol))
	// A tighter budget refuses the same vault before any derivation.
	n = kdf.Derivations()
	_, err = Open(ctx, b, WithPassphrase([]byte("first")), WithKDFPolicy(kdf.InsecurePolicyForTesting.WithBudget(kdf.Cost(p, p))))
	wantBudgetRefusal(t, err, "three slots, budget of two")
	if kdf.Derivations() != n {
		t.Fatal("the refusal ran a derivation")
	}
	// Create refuses a slot that alone is over the budget.
	_, err = Create(ctx, newMemoryT(t), WithPassphrase([]byte("x")), WithKDFParams(kdf.Params{Time: 4, MemoryKiB: p.MemoryKiB, Threads: 1}), WithKDFPolicy(pol))
	wantBudgetRefusal(t, err, "Create")
}

func newMemoryT(t *testing.T) backends.Backend {
	b, err := newMemory()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKDFBudgetDefaultSlots: under the default policy, a vault with the
// most passphrase slots a header holds (four), all at kdf.Default, opens;
// one more pass on one slot is refused before any derivation; Create
// refuses a slot of 1 GiB, within the ceiling but over the budget.
//
// The bounded run makes the three extra slots in this package (real
// parameters and a valid MAC, random salts and wrapped keys: they open
// nothing) and opens with the first slot's passphrase, two derivations in
// all; with SESSIONVAULT_LONG=1 every slot is a real one and the last
// slot's passphrase opens the vault after all four derivations.
func TestKDFBudgetDefaultSlots(t *testing.T) {
	ctx := context.Background()
	long := os.Getenv("SESSIONVAULT_LONG") == "1"
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := Create(ctx, b, WithPassphrase([]byte("p0")))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	seal(t, v, "main", "plaintext")
	pass := "p0"
	if long {
		for i := 1; i < maxPassphraseSlots; i++ {
			if _, err := v.AddPassphraseSlot(ctx, []byte(fmt.Sprintf("p%d", i)), kdf.Default); err != nil {
				t.Fatal(err)
			}
		}
		pass = fmt.Sprintf("p%d", maxPassphraseSlots-1)
	} else {
		v.mu.RLock()
		key := append([]byte(nil), v.current().key.Bytes()...)
		v.mu.RUnlock()
		rewriteSlots(t, b, true, key, kdf.Default, kdf.Default, kdf.Default)
	}
	n := kdf.Derivations()
	start := time.Now()
	v4 := mustOpen(t, b, WithPassphrase([]byte(pass)))
	elapsed := time.Since(start)
	t.Logf("four slots at %v: opened with %s in %v, %d derivations", kdf.Default, pass, elapsed.Round(time.Millisecond), kdf.Derivations()-n)
	fig := figures.New("vault/kdf-budget-default-slots")
	fig.Add("slots", maxPassphraseSlots)
	fig.Add("derivations", int64(kdf.Derivations()-n))
	fig.Add("open_millis", elapsed.Milliseconds())
	fig.Report(t)
	if got, want := kdf.Derivations()-n, map[bool]uint64{false: 1, true: maxPassphraseSlots}[long]; got != want {
		t.Fatalf("%d derivations, want %d", got, want)
	}
	if got := open(t, v4, "main"); got != "plaintext" {
		t.Fatalf("session = %q", got)
	}
	v4.Close()

	// One pass more on one slot: over the budget, refused for free.
	blob, ver, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(blob, kdf.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	h.slots[len(h.slots)-1].params.Time++
	if _, err := b.Put(ctx, backends.HeaderName, h.encode(), ver); err != nil {
		t.Fatal(err)
	}
	n = kdf.Derivations()
	_, err = Open(ctx, b, WithPassphrase([]byte("p0")))
	wantBudgetRefusal(t, err, "four default slots and one pass more")
	if kdf.Derivations() != n {
		t.Fatal("the refusal ran a derivation")
	}

	n = kdf.Derivations()
	_, err = Create(ctx, newMemoryT(t), WithPassphrase([]byte("x")), WithKDFParams(kdf.Params{Time: 3, MemoryKiB: 1 << 20, Threads: 4}))
	wantBudgetRefusal(t, err, "Create at 1 GiB")
	if kdf.Derivations() != n {
		t.Fatal("Create derived a key for a slot over the budget")
	}
}

// countingKeyStore counts the keys asked of a key store.
type countingKeyStore struct {
	backends.KeyStore
	gets atomic.Int64
}

func (c *countingKeyStore) GetKey(ctx context.Context, account string) ([]byte, error) {
	c.gets.Add(1)
	return c.KeyStore.GetKey(ctx, account)
}

// TestKDFBudgetKeychainPath: the keychain slot does not bypass the budget.
// With a passphrase given, a header whose passphrase slots are over the
// budget is refused before the key store is even asked, so the outcome
// never depends on whether the keychain answers; with the key store only,
// nothing can be derived, and the keychain slot opens the vault.
func TestKDFBudgetKeychainPath(t *testing.T) {
	checkKeychainPath(t, newKeyStore(), "vault/kdf-budget-keychain-path")
}

// checkKeychainPath runs TestKDFBudgetKeychainPath's checks with the key
// store kstore (a real keychain in TestKDFBudgetSecretService), reports
// its figures under figName, and deletes the keys it stored there.
func checkKeychainPath(t *testing.T, kstore backends.KeyStore, figName string) {
	ctx := context.Background()
	ks := &countingKeyStore{KeyStore: kstore}
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := Create(ctx, b, cheap(testPass, WithKeyStore(ks))...)
	if err != nil {
		t.Fatal(err)
	}
	seal(t, v, "main", "plaintext")
	v.mu.RLock()
	key := append([]byte(nil), v.current().key.Bytes()...)
	var accounts []string
	for _, s := range v.hdr.slots {
		if s.kind == KeychainSlot {
			accounts = append(accounts, account(v.hdr.id, s.id))
		}
	}
	v.mu.RUnlock()
	v.Close()
	defer func() {
		for _, a := range accounts {
			kstore.DeleteKey(ctx, a)
		}
	}()
	// The real keychain and passphrase slots stay; three forged slots at
	// the ceiling join them, with a valid MAC (as a writer of the header
	// who once held the key could make).
	rewriteSlots(t, b, true, key, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling)
	clear(key)

	n, gets := kdf.Derivations(), ks.gets.Load()
	// The real passphrase slot has test parameters: the test policy's
	// floor, with the default budget.
	pol := WithKDFPolicy(kdf.InsecurePolicyForTesting)
	_, err = Open(ctx, b, WithPassphrase([]byte(testPass)), WithKeyStore(ks), pol)
	fig := figures.New(figName)
	fig.Add("refused_derivations", int64(kdf.Derivations()-n))
	fig.Add("refused_keystore_reads", ks.gets.Load()-gets)
	wantBudgetRefusal(t, err, "passphrase and key store")
	if kdf.Derivations() != n || ks.gets.Load() != gets {
		t.Fatalf("before the refusal: %d derivations, %d key store reads", kdf.Derivations()-n, ks.gets.Load()-gets)
	}
	v2, err := Open(ctx, b, WithKeyStore(ks), pol)
	if err != nil {
		t.Fatalf("key store only: %v", err)
	}
	defer v2.Close()
	fig.Add("keystore_only_derivations", int64(kdf.Derivations()-n))
	fig.Add("keystore_only_opened", 1)
	fig.Report(t)
	if kdf.Derivations() != n || ks.gets.Load() != gets+1 {
		t.Fatalf("key store only: %d derivations, %d key store reads", kdf.Derivations()-n, ks.gets.Load()-gets)
	}
	if got := open(t, v2, "main"); got != "plaintext" {
		t.Fatalf("session = %q", got)
	}
}
