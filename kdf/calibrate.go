package kdf

import (
	"time"

	"golang.org/x/crypto/argon2"
)

// Calibrate returns parameters within DefaultPolicy that take about target
// to derive on this machine. See Policy.Calibrate.
func Calibrate(target time.Duration) (Params, error) {
	return DefaultPolicy.Calibrate(target)
}

// Calibrate returns parameters within p that take about target to derive
// on this machine, now: it runs argon2id a few times and takes the
// fastest run of each, so that a briefly busy machine does not inflate
// the result.
//
// It follows RFC 9106 section 4: keep Default's lanes (p=4) and passes
// (t=3) and spend the time on memory, up to 256 MiB; past that it adds
// passes. It never returns parameters below p's floor: when the floor
// itself takes longer than target, it returns the floor. It never returns
// parameters above p's ceiling, even when that is faster than target.
//
// The result depends on the machine and on its load; store it (the vault
// keeps it in the key slot) rather than calibrating on every unlock.
func (p Policy) Calibrate(target time.Duration) (Params, error) {
	if target <= 0 {
		return Params{}, ErrInvalidTarget
	}
	p = p.orDefault()
	threads := clamp(uint32(Default.Threads), uint32(p.Floor.Threads), uint32(p.Ceiling.Threads))
	// Probe: one pass over 32 MiB (or the floor's memory, if higher)
	// gives the cost of one pass over one KiB.
	probe := Params{Time: 1, MemoryKiB: max(32<<10, p.Floor.MemoryKiB), Threads: uint8(threads)}
	probe.Time = max(probe.Time, p.Floor.Time)
	probe.MemoryKiB = min(probe.MemoryKiB, p.Ceiling.MemoryKiB)
	perUnit := float64(bestOf(3, probe)) / (float64(probe.Time) * float64(probe.MemoryKiB))

	params := p.fit(float64(target), perUnit, threads)
	// One correction from a run at the chosen size: memory bandwidth and
	// page faults do not scale quite linearly from the probe.
	took := bestOf(2, params)
	perUnit = float64(took) / (float64(params.Time) * float64(params.MemoryKiB))
	return p.fit(float64(target), perUnit, threads), nil
}

// fit picks parameters within p for target nanoseconds, given the cost of
// one pass over one KiB.
func (p Policy) fit(target, perUnit float64, threads uint32) Params {
	maxMem := min(uint32(calibrateMaxMemoryKiB), p.Ceiling.MemoryKiB)
	minMem := max(p.Floor.MemoryKiB, threads*minMemoryPerThreadKiB)
	t := clamp(Default.Time, p.Floor.Time, p.Ceiling.Time)
	m := toUint32(target / (float64(t) * perUnit))
	switch {
	case m > maxMem:
		// Memory is capped: spend the rest on passes.
		m = maxMem
		t = clamp(toUint32(target/(float64(m)*perUnit)+0.5), p.Floor.Time, p.Ceiling.Time)
	case m < minMem:
		// Too little time for t passes over the floor's memory: fewer
		// passes, but never below the floor.
		m = minMem
		t = clamp(toUint32(target/(float64(m)*perUnit)), p.Floor.Time, p.Ceiling.Time)
	}
	// Whole MiB when that stays within bounds: simpler to read in a header
	// dump, and the difference is under 1%.
	if r := m &^ 1023; r >= minMem {
		m = r
	}
	m = clamp(m, minMem, maxMem)
	return Params{Time: t, MemoryKiB: m, Threads: uint8(threads)}
}

// bestOf runs argon2id n times with params and returns the fastest run.
func bestOf(n int, params Params) time.Duration {
	pass := make([]byte, 16)
	salt := NewSalt()
	best := time.Duration(1<<63 - 1)
	for range n {
		start := time.Now()
		derivations.Add(1)
		argon2.IDKey(pass, salt, params.Time, params.MemoryKiB, params.Threads, KeySize)
		best = min(best, time.Since(start))
	}
	return max(best, 1)
}

func clamp(v, lo, hi uint32) uint32 { return max(lo, min(v, hi)) }

// toUint32 converts a non-negative float, saturating at the uint32 range.
func toUint32(f float64) uint32 {
	switch {
	case f <= 0 || f != f:
		return 0
	case f >= 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(f)
}
