package kdf

import (
	"errors"
	"testing"
)

// TestDefaultBudget: the default budget admits exactly four derivations at
// Default (the most passphrase slots a header holds) and refuses one block
// more of work or memory; one derivation at the Ceiling is far beyond it.
func TestDefaultBudget(t *testing.T) {
	d := Default
	if DefaultBudget.Work != 4*3*64<<10 || DefaultBudget.MemoryKiB != 256<<10 {
		t.Fatalf("DefaultBudget = %+v, want 4 × (3 × 64 MiB) blocks and 256 MiB", DefaultBudget)
	}
	if got := DefaultBudget.String(); got != "4x the default work, 256 MiB" {
		t.Fatalf("String = %q", got)
	}
	if err := DefaultPolicy.CheckBudget([]Params{d, d, d, d}); err != nil {
		t.Fatalf("four slots at Default: %v", err)
	}
	// The zero Policy and a Policy without a Budget mean the default.
	for _, p := range []Policy{{}, {Floor: Floor, Ceiling: Ceiling}, InsecurePolicyForTesting} {
		if err := p.CheckBudget([]Params{d, d, d, d}); err != nil {
			t.Fatalf("%+v: four slots at Default: %v", p, err)
		}
	}
	moreWork := Params{Time: 4, MemoryKiB: d.MemoryKiB, Threads: d.Threads}
	moreMem := Params{Time: 1, MemoryKiB: 256<<10 + 1, Threads: 1}
	for name, ps := range map[string][]Params{
		"four at Default and one more pass": {d, d, d, moreWork},
		"257 MiB in one pass":               {moreMem},
		"one at the Ceiling":                {Ceiling},
		"five at Default":                   {d, d, d, d, d},
	} {
		err := DefaultPolicy.CheckBudget(ps)
		var be *BudgetError
		if !errors.Is(err, ErrOverBudget) || !errors.Is(err, ErrOutOfPolicy) || !errors.As(err, &be) {
			t.Fatalf("%s: %v, want a *BudgetError matching ErrOverBudget and ErrOutOfPolicy", name, err)
		}
		if be.Need != Cost(ps...) || be.Limit != DefaultBudget || be.Derivations != len(ps) {
			t.Fatalf("%s: %+v", name, be)
		}
	}
	// Threads do not change the work.
	if (Params{Time: 3, MemoryKiB: 64 << 10, Threads: 1}).Work() != d.Work() {
		t.Fatal("Work depends on Threads")
	}
}

// TestWithBudget: a raised budget admits what it names; a zero field keeps
// the default; the floor and ceiling are untouched.
func TestWithBudget(t *testing.T) {
	four := []Params{Ceiling, Ceiling, Ceiling, Ceiling}
	p := DefaultPolicy.WithBudget(Cost(four...))
	if err := p.CheckBudget(four); err != nil {
		t.Fatal(err)
	}
	if p.Floor != Floor || p.Ceiling != Ceiling {
		t.Fatalf("WithBudget changed the bounds: %+v", p)
	}
	half := DefaultPolicy.WithBudget(Budget{Work: 1 << 40})
	if err := half.CheckBudget([]Params{{Time: 10, MemoryKiB: 257 << 10, Threads: 1}}); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("a zero MemoryKiB did not keep the default 256 MiB: %v", err)
	}
	if got := (Budget{Work: Default.Work()*213 + 1}).Multiple(); got != 214 {
		t.Fatalf("Multiple rounds down: %d", got)
	}
}
