//go:build !windows

package tpm

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// A golden vault whose TPM slot was sealed by a real software TPM, kept
// with that TPM's state: testdata/golden/swtpm-state is the swtpm state
// folder, testdata/golden/vault the vault's blobs ("header" and
// "session.NAME"). TestGoldenTPMSlot starts swtpm on a copy of the state
// and opens the vault through its TPM slot, so the sealed-key layout
// (docs/FORMAT.md, "TPM slot") keeps opening. Written once with
//
//	go test ./backends/tpm -run TestGenerateGoldenTPM -golden.generate
//
// and never regenerated.
var generateGolden = flag.Bool("golden.generate", false, "write the golden TPM vault if missing (never overwrites)")

const (
	goldenPass    = "golden passphrase, TPM slot"
	goldenSession = "trader-1"
	goldenBody    = `{"refresh_token":"golden-refresh"}`
)

func TestGenerateGoldenTPM(t *testing.T) {
	if !*generateGolden {
		t.Skip("run with -golden.generate to write the golden TPM vault")
	}
	dir := filepath.Join("testdata", "golden")
	if _, err := os.Stat(dir); err == nil {
		t.Skipf("%s exists: left alone", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(dir, "swtpm-state"))
	b := memory.New()
	v, err := vault.Create(ctx, b, vault.WithTPM(newSealer(t, sw.Socket, WithPCRs(16))),
		vault.WithPassphrase([]byte(goldenPass)), vault.WithKDFParams(kdf.Floor))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Store(goldenSession).Seal(ctx, []byte(goldenBody), backends.Absent); err != nil {
		t.Fatal(err)
	}
	v.Close()
	sw.Stop()
	must(t, os.MkdirAll(filepath.Join(dir, "vault"), 0o755))
	for file, name := range map[string]string{"header": backends.HeaderName, "session." + goldenSession: goldenSession} {
		blob, _, err := b.Get(ctx, name)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "vault", file), blob, 0o644))
	}
	os.Remove(filepath.Join(dir, "swtpm-state", ".lock"))
}

func TestGoldenTPMSlot(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join("testdata", "golden")
	state := filepath.Join(t.TempDir(), "state")
	must(t, os.CopyFS(state, os.DirFS(filepath.Join(src, "swtpm-state"))))
	sw := startSWTPM(t, state)
	b := memory.New()
	for file, name := range map[string]string{"header": backends.HeaderName, "session." + goldenSession: goldenSession} {
		blob, err := os.ReadFile(filepath.Join(src, "vault", file))
		must(t, err)
		if _, err := b.Put(ctx, name, blob, backends.Absent); err != nil {
			t.Fatal(err)
		}
	}
	v := mustOpen(t, b, vault.WithTPM(newSealer(t, sw.Socket)))
	if in := v.Info(); in.FormatVersion != 2 || in.Slots[0].Kind != vault.TPMSlot || in.UnlockedBy != in.Slots[0].ID {
		t.Fatalf("info %+v", in)
	}
	openAll(t, v, map[string]string{goldenSession: goldenBody})
	in, err := Describe(v.Info().Slots[0].Sealed)
	if err != nil || len(in.PCRs) != 1 || in.PCRs[0] != 16 {
		t.Fatalf("Describe: %+v, %v", in, err)
	}
	// The passphrase opens it too, and the PCR binding holds.
	openAll(t, mustOpen(t, b, vault.WithPassphrase([]byte(goldenPass))), map[string]string{goldenSession: goldenBody})
	must(t, sw.ExtendPCR(16))
	if _, err := vault.Open(ctx, b, vault.WithTPM(newSealer(t, sw.Socket))); !errors.Is(err, ErrPCRMismatch) {
		t.Fatalf("after extending PCR 16: %v", err)
	}
}
