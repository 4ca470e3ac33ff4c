package kdf

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Known answers from the reference implementation (the argon2 command of
// the P-H-C/phc-winner-argon2 C code, Debian package argon2 0~20190702),
// not from the code under test:
//
//	printf 'password' | argon2 somesaltsomesalt -id -t 2 -k 19456 -p 1 -l 32 -r
//	printf 'correct horse battery staple' | argon2 sessionvault-kat -id -t 3 -k 65536 -p 4 -l 32 -r
//	printf 'pw' | argon2 saltsaltsaltsalt -id -t 1 -k 64 -p 1 -l 32 -r
var knownAnswers = []struct {
	pass, salt string
	params     Params
	policy     Policy
	want       string
}{
	{"password", "somesaltsomesalt", Floor, DefaultPolicy,
		"2b5dc4054886ec957ef59c73b661c54dd6fb274590b278f657c6d96aac8fa6d1"},
	{"correct horse battery staple", "sessionvault-kat", Default, DefaultPolicy,
		"bc36011ea7d956d8d9fd01a7b39afbc988ab2e053bbeb370f51b7d28f84fa315"},
	{"pw", "saltsaltsaltsalt", Params{Time: 1, MemoryKiB: 64, Threads: 1}, InsecurePolicyForTesting,
		"eccdaf4e0b8d1c2c2279754e1b5faeca413109a8b5639de8d09902b3defcb1ac"},
}

func TestDeriveKnownAnswers(t *testing.T) {
	for _, ka := range knownAnswers {
		t.Run(ka.params.String(), func(t *testing.T) {
			k, err := ka.policy.Derive([]byte(ka.pass), []byte(ka.salt), ka.params)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Destroy()
			if got := hex.EncodeToString(k.Bytes()); got != ka.want {
				t.Fatalf("Derive = %s, want %s", got, ka.want)
			}
		})
	}
}

func TestDeriveUsesDefaultPolicy(t *testing.T) {
	cheap := Params{Time: 1, MemoryKiB: 64, Threads: 1}
	before := Derivations()
	if _, err := Derive([]byte("pw"), make([]byte, SaltSize), cheap); !errors.Is(err, ErrOutOfPolicy) {
		t.Fatalf("Derive below the floor: %v, want ErrOutOfPolicy", err)
	}
	if Derivations() != before {
		t.Fatal("a refused derivation ran argon2id")
	}
}

func TestSaltSize(t *testing.T) {
	cheap := Params{Time: 1, MemoryKiB: 64, Threads: 1}
	for _, n := range []int{0, 15, 17, 32} {
		_, err := InsecurePolicyForTesting.Derive([]byte("pw"), make([]byte, n), cheap)
		if !errors.Is(err, ErrSaltSize) {
			t.Errorf("salt of %d bytes: %v, want ErrSaltSize", n, err)
		}
	}
	a, b := NewSalt(), NewSalt()
	if len(a) != SaltSize || bytes.Equal(a, b) {
		t.Fatalf("NewSalt: %x, %x", a, b)
	}
}

func TestPolicyCheck(t *testing.T) {
	accept := []Params{Default, Floor, Ceiling, {Time: 2, MemoryKiB: 19 << 10, Threads: 16}}
	for _, p := range accept {
		if err := DefaultPolicy.Check(p); err != nil {
			t.Errorf("DefaultPolicy.Check(%v) = %v", p, err)
		}
		if err := (Policy{}).Check(p); err != nil {
			t.Errorf("zero Policy.Check(%v) = %v", p, err)
		}
	}
	refuse := []struct {
		p     Params
		field string
		bound string
	}{
		{Params{}, "time", "argon2 minimum"},
		{Params{Time: 3, MemoryKiB: 64 << 10}, "threads", "argon2 minimum"},
		{Params{Time: 3, Threads: 4}, "memory", "argon2 minimum"},
		{Params{Time: 1, MemoryKiB: 64 << 10, Threads: 4}, "time", "floor"},
		{Params{Time: 3, MemoryKiB: 19<<10 - 1, Threads: 4}, "memory", "floor"},
		{Params{Time: 11, MemoryKiB: 64 << 10, Threads: 4}, "time", "ceiling"},
		{Params{Time: 3, MemoryKiB: 1<<20 + 1, Threads: 4}, "memory", "ceiling"},
		{Params{Time: 3, MemoryKiB: 64 << 10, Threads: 17}, "threads", "ceiling"},
		{Params{Time: 1<<32 - 1, MemoryKiB: 1<<32 - 1, Threads: 255}, "time", "ceiling"},
		{Params{Time: 3, MemoryKiB: 1<<32 - 1, Threads: 4}, "memory", "ceiling"},
	}
	for _, c := range refuse {
		err := DefaultPolicy.Check(c.p)
		var pe *ParamError
		if !errors.Is(err, ErrOutOfPolicy) || !errors.As(err, &pe) {
			t.Errorf("Check(%v) = %v, want a *ParamError matching ErrOutOfPolicy", c.p, err)
			continue
		}
		if pe.Field != c.field || pe.Bound != c.bound {
			t.Errorf("Check(%v): field %q bound %q, want %q %q (%v)", c.p, pe.Field, pe.Bound, c.field, c.bound, err)
		}
		if !strings.HasPrefix(err.Error(), "kdf: ") {
			t.Errorf("message %q lacks the package prefix", err)
		}
	}
}

func TestInsecurePolicyStillRefusesWhatArgonCannotRun(t *testing.T) {
	if err := InsecurePolicyForTesting.Check(Params{Time: 1, MemoryKiB: 8, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{{Time: 0, MemoryKiB: 64, Threads: 1}, {Time: 1, MemoryKiB: 31, Threads: 4}, {Time: 1, MemoryKiB: 64, Threads: 0}} {
		if err := InsecurePolicyForTesting.Check(p); !errors.Is(err, ErrOutOfPolicy) {
			t.Errorf("InsecurePolicyForTesting.Check(%v) = %v, want ErrOutOfPolicy", p, err)
		}
	}
	if err := InsecurePolicyForTesting.Check(Params{Time: 11, MemoryKiB: 64, Threads: 1}); !errors.Is(err, ErrOutOfPolicy) {
		t.Errorf("InsecurePolicyForTesting lifts the ceiling: %v", err)
	}
}

func TestWithCeiling(t *testing.T) {
	big := Params{Time: 3, MemoryKiB: 2 << 20, Threads: 4}
	if err := DefaultPolicy.Check(big); !errors.Is(err, ErrOutOfPolicy) {
		t.Fatalf("2 GiB accepted by default: %v", err)
	}
	raised := DefaultPolicy.WithCeiling(Params{Time: 20, MemoryKiB: 4 << 20, Threads: 32})
	if err := raised.Check(big); err != nil {
		t.Fatalf("raised ceiling refused %v: %v", big, err)
	}
	if err := raised.Check(Params{Time: 1, MemoryKiB: 64 << 10, Threads: 4}); !errors.Is(err, ErrOutOfPolicy) {
		t.Fatalf("WithCeiling lowered the floor: %v", err)
	}
	if got := (Policy{}).WithCeiling(big); got.Floor != Floor {
		t.Fatalf("zero Policy WithCeiling floor = %v, want Floor", got.Floor)
	}
}

// TestHostileParamsCostNothing: parameters a hostile header could claim
// are refused without running argon2id or allocating its memory.
func TestHostileParamsCostNothing(t *testing.T) {
	hostile := []Params{
		{Time: 3, MemoryKiB: 1<<32 - 1, Threads: 4}, // 4 GiB
		{Time: 1<<32 - 1, MemoryKiB: 64 << 10, Threads: 4},
		{Time: 1<<32 - 1, MemoryKiB: 1<<32 - 1, Threads: 255},
	}
	salt := NewSalt()
	before := Derivations()
	start := time.Now()
	for _, p := range hostile {
		if _, err := Derive([]byte("pw"), salt, p); !errors.Is(err, ErrOutOfPolicy) {
			t.Fatalf("Derive(%v) = %v, want ErrOutOfPolicy", p, err)
		}
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("refusing %d hostile parameter sets took %v, want < 10ms", len(hostile), d)
	}
	if Derivations() != before {
		t.Fatal("a refused derivation ran argon2id")
	}
	allocs := testing.AllocsPerRun(10, func() { _ = DefaultPolicy.Check(hostile[0]) })
	if allocs > 1 {
		t.Errorf("Check allocates %v times", allocs)
	}
}

func TestDerivationsCounts(t *testing.T) {
	before := Derivations()
	k, err := InsecurePolicyForTesting.Derive([]byte("pw"), NewSalt(), Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	k.Destroy()
	if got := Derivations() - before; got != 1 {
		t.Fatalf("one Derive counted %d times", got)
	}
}

func TestKeyRedactsAndDestroys(t *testing.T) {
	k, err := InsecurePolicyForTesting.Derive([]byte("pw"), []byte("saltsaltsaltsalt"), Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw := hex.EncodeToString(k.Bytes())
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("derived", "key", k)
	for _, out := range []string{
		fmt.Sprintf("%v %s %x %X %q %#v %+v %d", k, k, k, k, k, k, k, k),
		fmt.Sprint(k), fmt.Sprintf("%v", []any{k}), logged.String(),
	} {
		if strings.Contains(strings.ToLower(out), raw[:8]) || !strings.Contains(out, "REDACTED") {
			t.Errorf("key leaked or not redacted: %s", out)
		}
	}
	if len(k.Bytes()) != KeySize {
		t.Fatalf("key size %d", len(k.Bytes()))
	}
	k.Destroy()
	k.Destroy()
	if k.Bytes() != nil {
		t.Fatal("Bytes after Destroy")
	}
	var nilKey *Key
	nilKey.Destroy()
}

func TestParamsString(t *testing.T) {
	if got := Default.String(); got != "argon2id t=3 m=64MiB p=4" {
		t.Errorf("Default.String() = %q", got)
	}
	if got := (Params{Time: 1, MemoryKiB: 100, Threads: 1}).String(); got != "argon2id t=1 m=100KiB p=1" {
		t.Errorf("String() = %q", got)
	}
}

func TestCalibrate(t *testing.T) {
	if _, err := Calibrate(0); !errors.Is(err, ErrInvalidTarget) {
		t.Fatalf("Calibrate(0) = %v", err)
	}
	// A target far below what the floor costs returns the floor's
	// memory and passes, never less.
	p, err := Calibrate(time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if p.Time != Floor.Time || p.MemoryKiB != Floor.MemoryKiB {
		t.Fatalf("Calibrate(1µs) = %v, want the floor's t and m", p)
	}
	if err := DefaultPolicy.Check(p); err != nil {
		t.Fatalf("Calibrate returned %v outside the policy: %v", p, err)
	}
}

func TestFitStaysWithinPolicy(t *testing.T) {
	// fit is pure: check it over a sweep of machine speeds and targets.
	for _, perUnit := range []float64{0.37, 37, 370, 37000} { // ns per KiB-pass
		for _, target := range []time.Duration{time.Microsecond, 100 * time.Millisecond, time.Second, time.Hour} {
			for _, pol := range []Policy{DefaultPolicy, InsecurePolicyForTesting} {
				p := pol.fit(float64(target), perUnit, 4)
				if err := pol.Check(p); err != nil {
					t.Errorf("fit(%v, %v) = %v: %v", target, perUnit, p, err)
				}
				if p.MemoryKiB > calibrateMaxMemoryKiB {
					t.Errorf("fit(%v, %v) = %v above the calibration memory cap", target, perUnit, p)
				}
			}
		}
	}
	// About 370 ns per KiB-pass is this kind of machine (Default, 3
	// passes over 64 MiB, in 73 ms): 250 ms at t=3 is about 220 MiB.
	p := DefaultPolicy.fit(float64(250*time.Millisecond), 370, 4)
	if p.Time != 3 || p.MemoryKiB < 150<<10 || p.MemoryKiB > 256<<10 {
		t.Errorf("fit(250ms, 370ns) = %v", p)
	}
	// Past the memory cap, passes grow.
	p = DefaultPolicy.fit(float64(2*time.Second), 370, 4)
	if p.MemoryKiB != calibrateMaxMemoryKiB || p.Time <= 3 {
		t.Errorf("fit(2s, 370ns) = %v", p)
	}
}
