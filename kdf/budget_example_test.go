package kdf_test

import (
	"errors"
	"fmt"

	"github.com/sessionvault/sessionvault/kdf"
)

// A header's passphrase slots are checked against the budget before any
// derivation; a caller who made a costlier vault raises the budget.
func ExamplePolicy_CheckBudget() {
	slots := []kdf.Params{kdf.Default, kdf.Default}
	fmt.Println(kdf.DefaultPolicy.CheckBudget(slots))

	forged := []kdf.Params{kdf.Ceiling, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling}
	err := kdf.DefaultPolicy.CheckBudget(forged)
	fmt.Println(errors.Is(err, kdf.ErrOverBudget))
	fmt.Println(err)

	big := kdf.Params{Time: 4, MemoryKiB: 512 << 10, Threads: 4}
	pol := kdf.DefaultPolicy.WithBudget(kdf.Cost(big))
	fmt.Println(pol.CheckBudget([]kdf.Params{big}))
	// Output:
	// <nil>
	// true
	// kdf: 4 argon2id derivations would cost 213.34x the default work, 4096 MiB, above the budget of 4x the default work, 256 MiB
	// <nil>
}
