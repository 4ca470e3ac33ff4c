package kdf

import (
	"errors"
	"testing"
)

// FuzzPolicyCheck: Check never panics, accepts exactly the parameters
// within the policy and argon2's own minimum, and what it accepts derives
// without a panic (derivation is tried only for cheap parameters).
func FuzzPolicyCheck(f *testing.F) {
	for _, p := range []Params{Default, Floor, Ceiling, {}, {Time: 1, MemoryKiB: 8, Threads: 1}, {Time: 1<<32 - 1, MemoryKiB: 1<<32 - 1, Threads: 255}} {
		f.Add(p.Time, p.MemoryKiB, p.Threads)
	}
	salt := make([]byte, SaltSize)
	f.Fuzz(func(t *testing.T, time, mem uint32, threads uint8) {
		p := Params{Time: time, MemoryKiB: mem, Threads: threads}
		for _, pol := range []Policy{DefaultPolicy, InsecurePolicyForTesting} {
			err := pol.Check(p)
			within := time >= 1 && threads >= 1 && uint64(mem) >= 8*uint64(threads) &&
				time >= pol.Floor.Time && time <= pol.Ceiling.Time &&
				mem >= pol.Floor.MemoryKiB && mem <= pol.Ceiling.MemoryKiB &&
				threads >= pol.Floor.Threads && threads <= pol.Ceiling.Threads
			if (err == nil) != within {
				t.Fatalf("%v under %v: Check = %v, within bounds = %v", p, pol, err, within)
			}
			if err != nil && !errors.Is(err, ErrOutOfPolicy) {
				t.Fatalf("Check error %v does not match ErrOutOfPolicy", err)
			}
			if err == nil && time <= 2 && mem <= 1024 {
				k, err := pol.Derive([]byte("pw"), salt, p)
				if err != nil {
					t.Fatal(err)
				}
				k.Destroy()
			}
		}
	})
}
