// Package kdf derives key-encryption keys from passphrases with argon2id
// (RFC 9106), and decides which argon2id parameters are acceptable.
//
// Every derivation is checked against a Policy first: a floor (weaker
// parameters are refused: they would make a stolen vault cheap to
// brute-force) and a ceiling (costlier parameters are refused: a hostile
// vault header could otherwise make a reader allocate gigabytes or spin for
// minutes). Parameters read from disk are hostile input, and checking them
// costs nothing; deriving costs what they say.
//
// Derived keys live in locked memory where the OS allows (see
// internal/secmem) and are wiped by Key.Destroy. The argon2 work area itself
// (MemoryKiB of ordinary Go heap) is not wiped: golang.org/x/crypto/argon2
// allocates and drops it internally. It holds values derived from the
// passphrase, not the passphrase, and is returned to the garbage collector
// when Derive returns.
package kdf

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"golang.org/x/crypto/argon2"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Errors. Match them with errors.Is; a *ParamError carries the detail.
var (
	// ErrOutOfPolicy: the parameters are below the policy's floor or
	// above its ceiling (or below what argon2 itself accepts).
	ErrOutOfPolicy = errors.New("kdf: argon2id parameters out of policy")
	// ErrSaltSize: the salt is not exactly SaltSize bytes.
	ErrSaltSize = errors.New("kdf: salt must be 16 bytes")
	// ErrInvalidTarget: Calibrate was given a target duration <= 0.
	ErrInvalidTarget = errors.New("kdf: calibration target must be positive")
)

// Params are argon2id cost parameters. The zero value is invalid.
type Params struct {
	Time      uint32 // passes over memory (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // lanes (p); also the parallelism used
}

// String formats p as "argon2id t=3 m=64MiB p=4" (m in KiB when it is not
// a whole number of MiB).
func (p Params) String() string {
	m := fmt.Sprintf("%dKiB", p.MemoryKiB)
	if p.MemoryKiB%1024 == 0 {
		m = fmt.Sprintf("%dMiB", p.MemoryKiB/1024)
	}
	return fmt.Sprintf("argon2id t=%d m=%s p=%d", p.Time, m, p.Threads)
}

// Validate checks p against DefaultPolicy; see Policy.Check.
func (p Params) Validate() error { return DefaultPolicy.Check(p) }

// ParamError reports parameters refused by a Policy. It matches
// ErrOutOfPolicy.
//
// A zero ParamError is not a meaningful error: Policy.Check makes them.
type ParamError struct {
	Field string // "time", "memory" or "threads"
	Value uint64 // the refused value (memory in KiB)
	Limit uint64 // the bound it crossed
	Bound string // "floor", "ceiling" or "argon2 minimum"
}

func (e *ParamError) Error() string {
	rel := "below"
	if e.Bound == "ceiling" {
		rel = "above"
	}
	unit := ""
	if e.Field == "memory" {
		unit = " KiB"
	}
	return fmt.Sprintf("kdf: argon2id %s %d%s is %s the %s (%d%s)", e.Field, e.Value, unit, rel, e.Bound, e.Limit, unit)
}

// Is reports whether target is ErrOutOfPolicy.
func (e *ParamError) Is(target error) bool { return target == ErrOutOfPolicy }

// Policy bounds the parameters a caller accepts, inclusive on both ends,
// and the total work of the derivations one unlock may run (Budget; zero
// means DefaultBudget). The zero Policy means DefaultPolicy.
type Policy struct {
	Floor   Params
	Ceiling Params
	Budget  Budget
}

// DefaultPolicy accepts parameters from Floor to Ceiling.
var DefaultPolicy = Policy{Floor: Floor, Ceiling: Ceiling, Budget: DefaultBudget}

// InsecurePolicyForTesting accepts any parameters argon2 can run, from
// t=1, m=8 KiB per lane, p=1 up to the default Ceiling. It exists so that
// tests can derive keys in microseconds. A vault created with it can be
// brute-forced cheaply: never use it outside tests. Production code paths
// in this module never select it; it takes effect only where a caller
// passes it explicitly.
var InsecurePolicyForTesting = Policy{Floor: Params{Time: 1, MemoryKiB: 8, Threads: 1}, Ceiling: Ceiling}

// WithCeiling returns a copy of p whose ceiling is c, for callers that
// accept costlier parameters than Ceiling (a vault made on a large machine
// with Calibrate). It does not lower the floor.
func (p Policy) WithCeiling(c Params) Policy {
	p = p.orDefault()
	p.Ceiling = c
	return p
}

func (p Policy) orDefault() Policy {
	if p == (Policy{}) {
		return DefaultPolicy
	}
	return p
}

// Check reports whether params are within p, with a *ParamError matching
// ErrOutOfPolicy if not. It also refuses anything argon2 itself would
// panic on or silently adjust (zero values, memory below 8 KiB per lane),
// whatever the policy says.
func (p Policy) Check(params Params) error {
	p = p.orDefault()
	fields := []struct {
		name                        string
		v, argonMin, floor, ceiling uint64
	}{
		{"time", uint64(params.Time), uint64(absoluteMinimum.Time), uint64(p.Floor.Time), uint64(p.Ceiling.Time)},
		{"memory", uint64(params.MemoryKiB), uint64(params.Threads) * minMemoryPerThreadKiB, uint64(p.Floor.MemoryKiB), uint64(p.Ceiling.MemoryKiB)},
		{"threads", uint64(params.Threads), uint64(absoluteMinimum.Threads), uint64(p.Floor.Threads), uint64(p.Ceiling.Threads)},
	}
	for _, f := range fields {
		switch {
		case f.v < f.argonMin:
			return &ParamError{Field: f.name, Value: f.v, Limit: f.argonMin, Bound: "argon2 minimum"}
		case f.v < f.floor:
			return &ParamError{Field: f.name, Value: f.v, Limit: f.floor, Bound: "floor"}
		case f.v > f.ceiling:
			return &ParamError{Field: f.name, Value: f.v, Limit: f.ceiling, Bound: "ceiling"}
		}
	}
	return nil
}

// NewSalt returns SaltSize fresh random bytes from crypto/rand.
func NewSalt() []byte {
	salt := make([]byte, SaltSize)
	// crypto/rand.Read never returns an error since Go 1.24: it crashes
	// the program if the OS cannot supply randomness.
	rand.Read(salt)
	return salt
}

// derivations counts argon2id runs in this process (see Derivations).
var derivations atomic.Uint64

// Derivations returns how many argon2id derivations this process has run.
// It lets tests and tools check claims such as "opening a vault runs the
// KDF exactly once".
func Derivations() uint64 { return derivations.Load() }

// Derive checks params against DefaultPolicy and derives a KeySize-byte
// key from passphrase and salt with argon2id. See Policy.Derive.
func Derive(passphrase, salt []byte, params Params) (*Key, error) {
	return DefaultPolicy.Derive(passphrase, salt, params)
}

// Derive checks params against p and the salt's size, then derives a
// KeySize-byte key from passphrase and salt with argon2id. Nothing is
// allocated or computed for refused parameters. The caller destroys the
// key.
func (p Policy) Derive(passphrase, salt []byte, params Params) (*Key, error) {
	if err := p.Check(params); err != nil {
		return nil, err
	}
	if len(salt) != SaltSize {
		return nil, ErrSaltSize
	}
	derivations.Add(1)
	k := argon2.IDKey(passphrase, salt, params.Time, params.MemoryKiB, params.Threads, KeySize)
	return &Key{buf: secmem.From(k)}, nil
}

// Key is a derived key in wipeable (and, where the OS allows, locked)
// memory. It redacts itself in fmt and log/slog output.
//
// The zero value is not usable: Derive and Policy.Derive make Keys.
type Key struct {
	buf *secmem.Buffer
}

// Bytes returns the key. The slice is valid until Destroy.
func (k *Key) Bytes() []byte { return k.buf.Bytes() }

// Destroy wipes the key and releases its memory. It is idempotent.
func (k *Key) Destroy() {
	if k != nil {
		k.buf.Destroy()
	}
}

// String returns a placeholder; the key is never formatted.
func (k *Key) String() string { return "kdf.Key(REDACTED)" }

// GoString returns the same placeholder as String, for %#v.
func (k *Key) GoString() string { return k.String() }

// Format writes the placeholder for every verb, so %x or %v never print the
// key.
func (k *Key) Format(f fmt.State, verb rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps the key out of log/slog output.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }
