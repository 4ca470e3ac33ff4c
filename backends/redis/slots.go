package redis

import (
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// Which hash field holds a name's current blob: d0 or d1 (layout 2, the
// slot s), or d (layout 1). Get asks for that one field when it knows it,
// and for all three when it does not.
const (
	fieldD0 = 0
	fieldD1 = 1
	fieldD  = 2
)

// slotFields are the fields of Get's HMGET when it knows (or guesses)
// which field holds the blob (index fieldD0, fieldD1 or fieldD): layout, version, slot and that one data
// field, so that a name holding a previous generation costs the bytes of
// one blob, not two. Their order is fixed (Get indexes the reply).
var slotFields = [3][]string{
	{"layout", "v", "s", "d0"},
	{"layout", "v", "s", "d1"},
	{"layout", "v", "s", "d"},
}

// slotGuess is what a Backend remembers of where a name's blob lay: the
// field, and the version it held then.
type slotGuess struct {
	v     backends.Version
	field uint8
}

// slotGuesses remembers, per name, the field that held the blob the last
// time this Backend read or wrote it. It is only a hint that saves bytes:
// each HMGET is an atomic snapshot, and Get takes the version, the slot
// and the blob from the same one, so a wrong guess costs another read,
// never a wrong blob. At most maxSlotGuesses names are remembered.
type slotGuesses struct {
	mu sync.Mutex
	m  map[string]slotGuess
}

// get returns the guess for name, if any.
func (s *slotGuesses) get(name string) (slotGuess, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.m[name]
	return g, ok
}

// set remembers g for name. When maxSlotGuesses names are remembered, an
// arbitrary one is dropped first: its next Get reads both slots, still in
// one round trip.
func (s *slotGuesses) set(name string, g slotGuess) {
	s.mu.Lock()
	s.setLocked(name, g)
	s.mu.Unlock()
}

func (s *slotGuesses) setLocked(name string, g slotGuess) {
	if s.m == nil {
		s.m = make(map[string]slotGuess)
	}
	if _, ok := s.m[name]; !ok && len(s.m) >= maxSlotGuesses {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[name] = g
}

// forget drops the guess for name.
func (s *slotGuesses) forget(name string) {
	s.mu.Lock()
	delete(s.m, name)
	s.mu.Unlock()
}

// wrote updates the guess for name after a write of this Backend made v
// current. After a Put, the blob lies in the slot the script chose: slot
// 0 when the name was created or the previous generation is not kept,
// else the slot that was not current before (slot 1 for a layout-1 hash,
// which the write moved to layout 2); after a Restore, the other slot
// (slot 0 for a layout-1 hash). Which slot was current before is known
// only when the write replaced the version this Backend last saw
// (ifVersion); otherwise the guess is dropped.
func (s *slotGuesses) wrote(name string, restore, keep bool, ifVersion, v backends.Version) {
	var field uint8
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !restore && (!keep || ifVersion == backends.Absent):
		field = fieldD0
	default:
		g, ok := s.m[name]
		if !ok || g.v != ifVersion || ifVersion == backends.Any {
			delete(s.m, name)
			return
		}
		switch {
		case g.field == fieldD0:
			field = fieldD1
		case g.field == fieldD1 || restore:
			field = fieldD0
		default: // a Put of a layout-1 hash
			field = fieldD1
		}
	}
	s.setLocked(name, slotGuess{v: v, field: field})
}
