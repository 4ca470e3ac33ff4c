package kdf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrOverBudget: the argon2id work that a set of derivations would do (one
// per passphrase slot an unlock may try) is above the policy's Budget. It
// also matches ErrOutOfPolicy; a *BudgetError carries the figures.
var ErrOverBudget = errors.New("kdf: argon2id work over budget")

// Budget bounds the total argon2id work of one unlock: the sum over every
// derivation it may run. A vault header is hostile input, and each of its
// passphrase slots may cost up to the policy's Ceiling; the Budget bounds
// what all of them together can make a reader spend, before anything runs.
//
// Work is measured in 1 KiB blocks computed: Time × MemoryKiB per
// derivation. That is what sets argon2id's CPU time; the lanes (Threads)
// only spread the same blocks over cores, so they do not change the work.
// Memory is the sum of MemoryKiB over the derivations, not the largest one:
// each derivation allocates its own work area on the Go heap, and the
// garbage collector need not reuse one before the next is allocated, so
// the sum is what a process may hold.
//
// A zero field means the DefaultBudget's value for it wherever a Budget
// is applied, so the zero value stands for DefaultBudget.
type Budget struct {
	Work      uint64 // Σ Time × MemoryKiB over the derivations (KiB blocks)
	MemoryKiB uint64 // Σ MemoryKiB over the derivations
}

// Work returns p's cost in the Budget's measure: Time × MemoryKiB, the
// number of 1 KiB blocks argon2id computes.
func (p Params) Work() uint64 { return uint64(p.Time) * uint64(p.MemoryKiB) }

// Cost returns what deriving once with each of params costs, in the
// Budget's measures.
func Cost(params ...Params) Budget {
	var c Budget
	for _, p := range params {
		c.Work += p.Work()
		c.MemoryKiB += uint64(p.MemoryKiB)
	}
	return c
}

// orDefault fills zero fields from DefaultBudget.
func (b Budget) orDefault() Budget {
	if b.Work == 0 {
		b.Work = DefaultBudget.Work
	}
	if b.MemoryKiB == 0 {
		b.MemoryKiB = DefaultBudget.MemoryKiB
	}
	return b
}

// Multiple returns b's work as a multiple of one derivation at Default,
// rounded up: DefaultBudget is 4.
func (b Budget) Multiple() uint64 {
	d := Default.Work()
	return (b.Work + d - 1) / d
}

// String formats b as "4x the default work, 256 MiB" (the multiple
// rounded up to two decimals).
func (b Budget) String() string {
	m := math.Ceil(float64(b.Work)*100/float64(Default.Work())) / 100
	return fmt.Sprintf("%sx the default work, %s", strconv.FormatFloat(m, 'f', -1, 64), kib(b.MemoryKiB))
}

// kib formats a memory size in KiB as MiB when it is a whole number of
// them.
func kib(n uint64) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d MiB", n/1024)
	}
	return fmt.Sprintf("%d KiB", n)
}

// WithBudget returns a copy of p whose Budget is b (zero fields of b keep
// DefaultBudget's value).
func (p Policy) WithBudget(b Budget) Policy {
	p = p.orDefault()
	p.Budget = b
	return p
}

// budget returns p's budget with defaults filled in.
func (p Policy) budget() Budget { return p.Budget.orDefault() }

// CheckBudget reports whether deriving once with each of params (the
// passphrase slots an unlock may try) stays within p's Budget, with a
// *BudgetError matching ErrOverBudget and ErrOutOfPolicy if not. It costs
// nothing: call it before the first derivation. It does not check each
// Params against the floor and ceiling: see Check.
func (p Policy) CheckBudget(params []Params) error {
	need, limit := Cost(params...), p.budget()
	if need.Work > limit.Work || need.MemoryKiB > limit.MemoryKiB {
		return &BudgetError{Derivations: len(params), Need: need, Limit: limit}
	}
	return nil
}

// BudgetError reports derivations whose total cost is above a Budget. It
// matches ErrOverBudget and ErrOutOfPolicy.
//
// A zero BudgetError is not a meaningful error: Policy.CheckBudget makes
// them.
type BudgetError struct {
	Derivations int    // how many derivations were counted
	Need        Budget // what they would cost
	Limit       Budget // the budget they are above
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("kdf: %d argon2id derivations would cost %s, above the budget of %s",
		e.Derivations, e.Need, e.Limit)
}

// Is reports whether target is ErrOverBudget or ErrOutOfPolicy.
func (e *BudgetError) Is(target error) bool {
	return target == ErrOverBudget || target == ErrOutOfPolicy
}
