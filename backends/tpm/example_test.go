package tpm_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/tpm"
	"github.com/sessionvault/sessionvault/vault"
)

// A headless server's vault: a TPM slot sealed to PCR 7 (the Secure Boot
// state) plus a recovery passphrase. At boot the bot opens it with the
// TPM alone; if the TPM refuses (cleared, replaced, PCRs changed), the
// operator opens it with the passphrase and seals a new TPM slot.
func Example() {
	ctx := context.Background()
	b, err := file.New("/var/lib/bot/vault")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	sealer, err := tpm.New(tpm.DefaultDevice, tpm.WithPCRs(7))
	if err != nil {
		log.Fatal(err)
	}

	// Once, at setup: vault.Create(ctx, b, vault.WithTPM(sealer),
	// vault.WithPassphrase(recovery)).

	v, err := vault.Open(ctx, b, vault.WithTPM(sealer))
	switch {
	case errors.Is(err, tpm.ErrPCRMismatch), errors.Is(err, tpm.ErrNotThisTPM):
		log.Fatal("the TPM refuses this vault's key: open it with the recovery passphrase and add a new TPM slot (AddTPMSlot)")
	case errors.Is(err, tpm.ErrUnavailable):
		log.Fatal("no TPM at ", sealer.Device())
	case err != nil:
		log.Fatal(err)
	}
	defer v.Close()
	fmt.Println("unlocked by", v.Info().UnlockedBy)
}

// Describe reads a TPM slot's sealed key without the TPM.
func ExampleDescribe() {
	var in vault.Info // from (*vault.Vault).Info or vault.Inspect
	for _, s := range in.Slots {
		if s.Kind != vault.TPMSlot {
			continue
		}
		d, err := tpm.Describe(s.Sealed)
		if err != nil {
			fmt.Println("slot", s.ID, err)
			continue
		}
		fmt.Println("slot", s.ID, "sealed to PCRs", d.PCRs)
	}
	// Output:
}
