//go:build !windows

package tpm

import (
	"testing"

	"github.com/sessionvault/sessionvault/internal/swtpmtest"
)

func startSWTPM(t testing.TB, state string) *swtpmtest.TPM { return swtpmtest.Start(t, state) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
