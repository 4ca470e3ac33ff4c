package vault

import (
	"fmt"

	"github.com/sessionvault/sessionvault/kdf"
)

// The KDF budget (kdf.Budget) bounds the argon2id work of one unlock over
// every passphrase slot it may try. Open tries the passphrase slots in the
// header's order and stops at the first that opens, but the header (its
// order included) is hostile input and a wrong passphrase tries them all,
// so stopping early does not lower the worst case: the budget covers every
// passphrase slot of the header, and is checked once, before the first
// derivation, whenever a passphrase was given. An unlock without a
// passphrase (a keychain key only) runs no derivation and is not refused
// for it; one with both is checked before the keychain is even asked, so
// the outcome never depends on whether the keychain answers.
//
// Create, AddPassphraseSlot and ChangePassphrase check the header they are
// about to write against the same budget, so this package never writes a
// header that its own policy would refuse to open.

// passphraseParams returns the parameters of h's passphrase slots, skipping
// the slot skip (nil: none), and adding extra.
func passphraseParams(h *header, skip *slot, extra ...kdf.Params) []kdf.Params {
	var ps []kdf.Params
	for i := range h.slots {
		if s := &h.slots[i]; s.kind == PassphraseSlot && s != skip {
			ps = append(ps, s.params)
		}
	}
	return append(ps, extra...)
}

// checkBudget refuses params (the passphrase slots one unlock may derive)
// when they cost more than pol's budget, with a *PolicyError that matches
// ErrPolicy, kdf.ErrOverBudget and kdf.ErrOutOfPolicy.
func checkBudget(pol kdf.Policy, params []kdf.Params) error {
	if err := pol.CheckBudget(params); err != nil {
		return &PolicyError{Err: err}
	}
	return nil
}

// budgetHint is the sentence a budget refusal ends with: how a caller
// allows it.
func budgetHint(be *kdf.BudgetError) string {
	return fmt.Sprintf("if this vault is yours and you trust its header, allow it with vault.WithKDFPolicy(kdf.DefaultPolicy.WithBudget(kdf.Budget{Work: %d, MemoryKiB: %d}))",
		be.Need.Work, be.Need.MemoryKiB)
}
