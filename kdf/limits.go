package kdf

// Sizes and parameter bounds, in one place. Each has its reason.
const (
	// KeySize is the size of a derived key: 256 bits, the key size of
	// XChaCha20-Poly1305 and of HMAC-SHA256 keys in the vault format.
	KeySize = 32

	// SaltSize is the size of a salt: 128 bits, the size RFC 9106
	// (section 3.1) recommends, random per passphrase slot, so two
	// slots with the same passphrase never share a key.
	SaltSize = 16

	// minMemoryPerThreadKiB is argon2's own lower bound: each lane needs
	// at least 8 blocks of 1 KiB (RFC 9106, section 3.1). x/crypto's
	// argon2 silently raises smaller values, which would make a header
	// claim one cost and pay another; we refuse them instead.
	minMemoryPerThreadKiB = 8

	// calibrateMaxMemoryKiB bounds the memory Calibrate chooses: 256 MiB.
	// Past it Calibrate adds passes instead. A bot host or a container
	// with a few hundred MiB must still be able to unlock the vault it
	// created; the ceiling (1 GiB) allows more for callers who choose it.
	calibrateMaxMemoryKiB = 256 << 10
)

// Default is the parameter set to use when there is no reason to pick
// another: RFC 9106's second recommended option (section 4), t=3 passes
// over m=64 MiB with p=4 lanes. It takes about 75 ms on a 2-core 2020s
// server.
var Default = Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Floor is the weakest parameter set a production policy accepts:
// m=19 MiB and t=2 (the OWASP minimum for argon2id), p=1. Any Params with
// less memory or fewer passes is refused before derivation.
var Floor = Params{Time: 2, MemoryKiB: 19 << 10, Threads: 1}

// Ceiling is the most expensive parameter set the default policy accepts:
// m=1 GiB, t=10, p=16. It bounds what a hostile header can make a reader
// spend (memory, and seconds of CPU), so that opening a crafted vault costs
// nothing. Raise it with Policy.WithCeiling.
var Ceiling = Params{Time: 10, MemoryKiB: 1 << 20, Threads: 16}

// absoluteMinimum is what argon2 itself needs; no Policy can go below it,
// not even InsecurePolicyForTesting.
var absoluteMinimum = Params{Time: 1, MemoryKiB: minMemoryPerThreadKiB, Threads: 1}

// DefaultBudget allows four derivations at Default (the most passphrase
// slots a vault header holds) and no more: the most a header written with
// the default parameters costs to try, so that a forged one costs no more
// than that. It is 4 × Default's work (t=3 × 64 MiB each: 0.3 to 0.5 s in
// all on the 2-core machines of this project, TestKDFBudgetDefaultSlots)
// and 256 MiB of memory in all. A vault with fewer slots may use costlier
// parameters up to these totals (one slot of t=3 × 256 MiB, or two of
// t=6 × 64 MiB). Raise it with Policy.WithBudget for vaults made with
// costlier parameters.
var DefaultBudget = Budget{Work: 4 * Default.Work(), MemoryKiB: 4 * uint64(Default.MemoryKiB)}
