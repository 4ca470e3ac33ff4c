package redis

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// WithRollbackCheck sets whether the Backend refuses a blob older than one
// it has already seen for the same name (default true). Every Get, Put
// and Restore remembers, per name, the highest version counter it read or
// wrote; a later Get that finds a lower counter fails with an error
// matching ErrRollback instead of returning the older blob. That is what
// a client sees when a failover promotes a replica that lacked the newest
// writes, or when an older copy of the data is loaded into the server.
//
// The check is per Backend and in memory: a new process starts with
// nothing seen. The vault's own rollback check (a counter sealed inside
// each session) covers what a backend cannot. A lower version is not
// always an attack: after a failover lost writes, Forget accepts what
// the server now holds.
func WithRollbackCheck(on bool) Option {
	return func(c *config) error {
		c.rollbackCheck = on
		return nil
	}
}

// seenVersions is what a Backend remembers of each name's versions.
type seenVersions struct {
	mu sync.Mutex
	m  map[string]seenEntry
}

type seenEntry struct {
	min  uint64 // lowest counter a Get accepts (Forget resets it to 0)
	high uint64 // highest counter ever read or written (Forget keeps it)
}

// counter returns the counter of a version this package made
// ("<counter>-<nonce>").
func counter(v backends.Version) (uint64, bool) {
	i := strings.IndexByte(string(v), '-')
	if i < 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v[:i]), 10, 64)
	// A counter over maxCounter is none this package's scripts write
	// (FORMAT.md §13: at most 15 digits): a hostile one must not become
	// the floor of this Backend's next writes.
	return n, err == nil && n <= maxCounter
}

// least returns the lowest counter a read of name that starts now may
// return. A read compares with what was seen before it was sent: a write
// by another goroutine of this Backend that completes while the read is
// under way does not make the read's (then current) answer a rollback.
func (b *Backend) least(name string) uint64 {
	if !b.cfg.rollbackCheck {
		return 0
	}
	b.seen.mu.Lock()
	defer b.seen.mu.Unlock()
	return b.seen.m[name].min
}

// check returns an ErrRollback error if v is older than least, what
// least(name) returned before the read was sent, and otherwise remembers
// v.
func (b *Backend) check(op, name string, v backends.Version, least uint64) error {
	if !b.cfg.rollbackCheck {
		return nil
	}
	n, ok := counter(v)
	if !ok {
		return nil
	}
	if n < least {
		return opErr(op, name, ErrRollback,
			fmt.Errorf("stored version counter %d is below %d, already seen", n, least))
	}
	b.seen.mu.Lock()
	b.seen.remember(name, n)
	b.seen.mu.Unlock()
	return nil
}

// saw remembers v, which this Backend wrote, as the newest version of name.
func (b *Backend) saw(name string, v backends.Version) {
	if !b.cfg.rollbackCheck {
		return
	}
	if n, ok := counter(v); ok {
		b.seen.mu.Lock()
		b.seen.remember(name, n)
		b.seen.mu.Unlock()
	}
}

func (s *seenVersions) remember(name string, n uint64) {
	if s.m == nil {
		s.m = make(map[string]seenEntry)
	}
	e, ok := s.m[name]
	if !ok && len(s.m) >= maxSeenNames {
		return // bounded: names beyond the limit are not checked
	}
	e.min = max(e.min, n)
	e.high = max(e.high, n)
	s.m[name] = e
}

// floor is the lowest counter a new version of name may have: one above
// the newest seen, so that after a rollback this client's next write is
// again above everything it has seen ("0": none).
func (b *Backend) floor(name string) uint64 {
	if !b.cfg.rollbackCheck {
		return 0
	}
	b.seen.mu.Lock()
	defer b.seen.mu.Unlock()
	e, ok := b.seen.m[name]
	if !ok {
		return 0
	}
	return e.high + 1
}

// nextCounter is the counter of the version that replaces ifVersion, for
// the put script's common path: one above ifVersion's and at least floor;
// false when ifVersion is not a version or its counter has more digits
// than the script accepts.
func nextCounter(ifVersion backends.Version, floor uint64) (uint64, bool) {
	n, ok := counter(ifVersion)
	if !ok || n >= maxCounter {
		return 0, false
	}
	if c := max(n+1, floor); c <= maxCounter {
		return c, true
	}
	return 0, false
}

// Forget makes the next Get of name accept whatever version the server
// holds. Call it after deciding to accept a rollback (ErrRollback): the
// writes the server lost are gone, and the application must recover from
// the older blob (for a session: a new login when the refresh token in it
// was already rotated). The Backend still remembers the highest version
// it saw, and its next write of name gets a higher one, so that other
// clients which saw the lost writes accept the new blob.
func (b *Backend) Forget(name string) {
	b.seen.mu.Lock()
	if e, ok := b.seen.m[name]; ok {
		e.min = 0
		b.seen.m[name] = e
	}
	b.seen.mu.Unlock()
}

// forgetAll drops everything remembered of name (after a Delete).
func (b *Backend) forgetAll(name string) {
	b.seen.mu.Lock()
	delete(b.seen.m, name)
	b.seen.mu.Unlock()
}
