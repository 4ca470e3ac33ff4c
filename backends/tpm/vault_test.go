//go:build !windows

package tpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

const testPass = "recovery passphrase for the TPM tests"

// spySealer is the real Sealer, remembering every key it was asked to
// seal, so that the test can look for them where they must not be.
type spySealer struct {
	*Sealer
	mu   sync.Mutex
	keks [][]byte
}

func (s *spySealer) Seal(ctx context.Context, kek []byte) ([]byte, error) {
	s.mu.Lock()
	s.keks = append(s.keks, append([]byte(nil), kek...))
	s.mu.Unlock()
	return s.Sealer.Seal(ctx, kek)
}

// fileVault returns a file backend in a fresh private folder.
func fileVault(t *testing.T) (*file.Backend, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}

func withPass(more ...vault.Option) []vault.Option {
	return append([]vault.Option{vault.WithPassphrase([]byte(testPass)), vault.WithKDFParams(kdf.Floor)}, more...)
}

func openAll(t *testing.T, v *vault.Vault, want map[string]string) {
	t.Helper()
	for name, body := range want {
		p, _, err := v.Store(name).Open(context.Background())
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		if string(p) != body {
			t.Fatalf("session %s differs", name)
		}
		secmem.Wipe(p)
	}
}

func mustOpen(t *testing.T, b backends.Backend, opts ...vault.Option) *vault.Vault {
	t.Helper()
	v, err := vault.Open(context.Background(), b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestVaultWithTPMAndPassphrase: the life of a headless server's vault,
// on a real software TPM: created with a TPM slot and a recovery
// passphrase, opened by each, rotated, passphrase changed, survives a
// TPM restart (a reboot), and the passphrase recovers once the TPM is
// wiped.
func TestVaultWithTPMAndPassphrase(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	spy := &spySealer{Sealer: newSealer(t, sw.Socket)}
	b, dir := fileVault(t)
	v, err := vault.Create(ctx, b, withPass(vault.WithTPM(spy))...)
	if err != nil {
		t.Fatal(err)
	}
	sessions := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("bot-%d", i)
		sessions[name] = fmt.Sprintf(`{"refresh_token":"rt-%d"}`, i)
		if _, err := v.Store(name).Seal(ctx, []byte(sessions[name]), backends.Absent); err != nil {
			t.Fatal(err)
		}
	}
	in := v.Info()
	if in.FormatVersion != 2 || in.Slots[0].Kind != vault.TPMSlot || in.Slots[1].Kind != vault.PassphraseSlot {
		t.Fatalf("info %+v", in)
	}
	tpmSlot := in.Slots[0].ID
	v.Close()

	// The TPM alone opens it: no passphrase, no argon2id run.
	start := time.Now()
	vt := mustOpen(t, b, vault.WithTPM(spy))
	openTime := time.Since(start)
	t.Logf("open with the TPM slot: %v", openTime)
	f := figures.New("tpm/vault")
	f.Add("sessions", int64(len(sessions)))
	f.Add("open_tpm_us", openTime.Microseconds())
	f.Declare("keys_found")
	defer f.Report(t)
	if vt.Info().UnlockedBy != tpmSlot {
		t.Fatal("not unlocked by the TPM slot")
	}
	openAll(t, vt, sessions)
	// The passphrase alone too.
	openAll(t, mustOpen(t, b, withPass()...), sessions)

	// Rotate with both key sources: the TPM unseals its slot's key, no
	// new seal.
	vb := mustOpen(t, b, withPass(vault.WithTPM(spy))...)
	seals := len(spy.keks)
	if err := vb.RotateKey(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(spy.keks) != seals || vb.Info().Current != 2 {
		t.Fatalf("rotate: %d new seals, generation %d", len(spy.keks)-seals, vb.Info().Current)
	}
	// Change the passphrase (passwd): the TPM slot is untouched.
	if err := vb.ChangePassphrase(ctx, []byte("a new recovery passphrase"), kdf.Floor); err != nil {
		t.Fatal(err)
	}
	openAll(t, mustOpen(t, b, vault.WithTPM(spy)), sessions)
	openAll(t, mustOpen(t, b, vault.WithPassphrase([]byte("a new recovery passphrase"))), sessions)

	// A reboot: the TPM restarts with its state; the slot still opens.
	sw.Stop()
	must(t, sw.Restart())
	openAll(t, mustOpen(t, b, vault.WithTPM(spy)), sessions)

	// The key-encryption key is nowhere in the vault folder.
	files, found := scanFolder(t, dir, spy.keks)
	f.Max("files_scanned", int64(files))
	f.Add("keys_found", int64(found))

	// TPM state wiped: the TPM slot is a wrong key, the passphrase
	// recovers, and a new TPM slot can be added for the new TPM.
	must(t, sw.Wipe())
	_, err = vault.Open(ctx, b, vault.WithTPM(spy))
	if !errors.Is(err, vault.ErrWrongKey) || !errors.Is(err, ErrNotThisTPM) {
		t.Fatalf("open a wiped TPM: %v, want ErrWrongKey and ErrNotThisTPM", err)
	}
	vr := mustOpen(t, b, vault.WithTPM(spy), vault.WithPassphrase([]byte("a new recovery passphrase")))
	openAll(t, vr, sessions)
	if err := vr.RemoveSlot(ctx, tpmSlot); err != nil {
		t.Fatal(err)
	}
	if _, err := vr.AddTPMSlot(ctx, spy); err != nil {
		t.Fatal(err)
	}
	openAll(t, mustOpen(t, b, vault.WithTPM(spy)), sessions)
	files, found = scanFolder(t, dir, spy.keks)
	f.Max("files_scanned", int64(files))
	f.Add("keys_sealed", int64(len(spy.keks)))
	f.Add("keys_found", int64(found))
}

// TestVaultAddTPMSlot: passwd --tpm on a passphrase vault.
func TestVaultAddTPMSlot(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	s := newSealer(t, sw.Socket, WithPCRs(16))
	b, _ := fileVault(t)
	v, err := vault.Create(ctx, b, withPass()...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Store("a").Seal(ctx, []byte("alpha"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	if v.Info().FormatVersion != 1 {
		t.Fatal("a passphrase vault is not version 1")
	}
	if _, err := v.AddTPMSlot(ctx, s); err != nil {
		t.Fatal(err)
	}
	openAll(t, mustOpen(t, b, vault.WithTPM(s)), map[string]string{"a": "alpha"})

	// PCR 16 changes: a typed error, and the passphrase still opens.
	must(t, sw.ExtendPCR(16))
	_, err = vault.Open(ctx, b, vault.WithTPM(s))
	if !errors.Is(err, ErrPCRMismatch) || !errors.Is(err, vault.ErrWrongKey) {
		t.Fatalf("open after a PCR change: %v, want ErrPCRMismatch", err)
	}
	var se *vault.SlotError
	if !errors.As(err, &se) || se.Kind != vault.TPMSlot {
		t.Fatalf("%v: no TPM *vault.SlotError", err)
	}
	openAll(t, mustOpen(t, b, withPass(vault.WithTPM(s))...), map[string]string{"a": "alpha"})
}

// TestVaultNoTPM: with no TPM, Open fails fast with ErrUnavailable (not a
// wrong key), and a passphrase given too still opens.
func TestVaultNoTPM(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	s := newSealer(t, sw.Socket)
	b, _ := fileVault(t)
	v, err := vault.Create(ctx, b, withPass(vault.WithTPM(s))...)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	sw.Stop()
	start := time.Now()
	_, err = vault.Open(ctx, b, vault.WithTPM(s))
	d := time.Since(start)
	if d > time.Second {
		t.Fatalf("Open took %v with no TPM", d)
	}
	t.Logf("Open with the TPM stopped: ErrUnavailable in %v", d)
	f := figures.New("tpm/vault-no-tpm")
	f.Add("open_us", d.Microseconds())
	defer f.Report(t)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, vault.ErrWrongKey) {
		t.Fatalf("open with no TPM: %v, want ErrUnavailable", err)
	}
	mustOpen(t, b, withPass(vault.WithTPM(s))...)
	// A vault cannot be created on a missing TPM.
	b2, _ := fileVault(t)
	if _, err := vault.Create(ctx, b2, withPass(vault.WithTPM(s))...); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("create with no TPM: %v", err)
	}
}

// scanFolder fails if any file under dir holds any of keys; it returns
// the number of files scanned and of keys found.
func scanFolder(t *testing.T, dir string, keys [][]byte) (files, found int) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, k := range keys {
			if bytes.Contains(b, k) {
				found++
				t.Errorf("%s holds a key-encryption key in plaintext", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || len(keys) == 0 {
		t.Fatalf("scanned %d files for %d keys", n, len(keys))
	}
	t.Logf("scanned %d files for %d keys: %d found", n, len(keys), found)
	return n, found
}
