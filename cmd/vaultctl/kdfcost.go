package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// allowKDFCostEnv is read when --allow-kdf-cost is not given.
const allowKDFCostEnv = "VAULTCTL_ALLOW_KDF_COST"

// kdfCostUsage is the help text of --allow-kdf-cost.
const kdfCostUsage = "allow passphrase slots that together cost up to `COST` in argon2id: \"MEMORY,Nx\", their total memory (such as 1GiB) and N times the work of the default t=3 m=64MiB (default 256MiB,4x; or $" + allowKDFCostEnv + ")"

// resolveKDFCost parses --allow-kdf-cost (else $VAULTCTL_ALLOW_KDF_COST)
// into a.kdfPolicy. Without either, the library's default policy applies.
func (a *app) resolveKDFCost() error {
	spec, from := a.allowKDFCost, "--allow-kdf-cost"
	if spec == "" {
		spec, from = a.getenv(allowKDFCostEnv), "$"+allowKDFCostEnv
	}
	a.kdfPolicy = kdf.DefaultPolicy
	if spec == "" {
		return nil
	}
	b, err := parseKDFCost(spec)
	if err != nil {
		return usagef("%s %q: %v", from, spec, err)
	}
	a.kdfPolicy = kdf.DefaultPolicy.WithBudget(b)
	return nil
}

// policyOptions returns the vault options that carry the KDF policy: none
// for the default one.
func (a *app) policyOptions() []vault.Option {
	if a.kdfPolicy == kdf.DefaultPolicy || a.kdfPolicy == (kdf.Policy{}) {
		return nil
	}
	return []vault.Option{vault.WithKDFPolicy(a.kdfPolicy)}
}

// parseKDFCost parses "MEMORY,Nx", "MEMORY" or "Nx": MEMORY is a whole
// number of KiB, MiB or GiB (the total of every passphrase slot's m), N a
// whole multiple of the default parameters' work (t × m). A part left out
// keeps the default budget's value.
func parseKDFCost(s string) (kdf.Budget, error) {
	var b kdf.Budget
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return b, errors.New(`want "MEMORY,Nx", such as 1GiB,16x`)
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if n, ok := strings.CutSuffix(p, "x"); ok {
			m, err := strconv.ParseUint(n, 10, 32)
			if err != nil || m == 0 || b.Work != 0 {
				return kdf.Budget{}, fmt.Errorf("%q: want a positive whole multiple such as 16x, once", p)
			}
			b.Work = m * kdf.Default.Work()
			continue
		}
		var unit uint64
		num := p
		for suf, u := range map[string]uint64{"KiB": 1, "MiB": 1 << 10, "GiB": 1 << 20} {
			if n, ok := strings.CutSuffix(p, suf); ok {
				num, unit = n, u
			}
		}
		m, err := strconv.ParseUint(num, 10, 32)
		if unit == 0 || err != nil || m == 0 || b.MemoryKiB != 0 {
			return kdf.Budget{}, fmt.Errorf("%q: want a memory size such as 512MiB or 1GiB, once", p)
		}
		b.MemoryKiB = m * unit
	}
	return b, nil
}

// formatKDFCost formats b the way parseKDFCost reads it, rounding the
// work up to a whole multiple.
func formatKDFCost(b kdf.Budget) string {
	mem := fmt.Sprintf("%dKiB", b.MemoryKiB)
	switch {
	case b.MemoryKiB%(1<<20) == 0:
		mem = fmt.Sprintf("%dGiB", b.MemoryKiB>>20)
	case b.MemoryKiB%(1<<10) == 0:
		mem = fmt.Sprintf("%dMiB", b.MemoryKiB>>10)
	}
	return fmt.Sprintf("%s,%dx", mem, b.Multiple())
}

// kdfCostAllow returns how to allow what a budget refusal err needs
// ("--allow-kdf-cost=... or VAULTCTL_ALLOW_KDF_COST=..."), or "" when err
// is not one.
func kdfCostAllow(err error) string {
	var be *kdf.BudgetError
	if !errors.As(err, &be) {
		return ""
	}
	spec := formatKDFCost(be.Need)
	return fmt.Sprintf("--allow-kdf-cost=%s (a global flag) or %s=%s", spec, allowKDFCostEnv, spec)
}

// kdfCostHint is the operator's next step after a vault header was
// refused over the budget.
func kdfCostHint(err error) string {
	return "refused before trying any passphrase, so this says nothing about the passphrase; if the vault is yours and you made its key slots that costly, allow it with " + kdfCostAllow(err)
}
