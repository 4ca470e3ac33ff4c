package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

func newSealer(t testing.TB, dev string, opts ...Option) *Sealer {
	t.Helper()
	s, err := New(dev, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// extendPCR extends PCR pcr of the software TPM's SHA-256 bank.
func extendPCR(t testing.TB, socket string, pcr int) {
	t.Helper()
	tp, err := linuxudstpm.Open(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	d := make([]byte, 32)
	rand.Read(d)
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d}}},
	}.Execute(tp)
	if err != nil {
		t.Fatal(err)
	}
}

func TestSealUnseal(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	s := newSealer(t, sw.socket)
	kek := make([]byte, 32)
	rand.Read(kek)
	start := time.Now()
	sealed, err := s.Seal(ctx, kek)
	if err != nil {
		t.Fatal(err)
	}
	sealTime := time.Since(start)
	if bytes.Contains(sealed, kek) {
		t.Fatal("the sealed bytes hold the key")
	}
	start = time.Now()
	got, err := s.Unseal(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sealed bytes: %d; seal %v, unseal %v", len(sealed), sealTime, time.Since(start))
	if !bytes.Equal(got, kek) {
		t.Fatal("unsealed another key")
	}
	in, err := Describe(sealed)
	if err != nil || len(in.PCRs) != 0 {
		t.Fatalf("Describe: %+v, %v", in, err)
	}
}
