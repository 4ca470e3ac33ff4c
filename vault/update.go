package vault

import (
	"context"
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// edit is a header change: it gets a copy of the current header and the
// current data keys (one per generation, read-only), changes the header
// (re-wrapping or adding slots as needed), and returns the KEKs of slots
// it made, for the Vault to remember, and the data keys of generations it
// added (in header order, nil for generations that existed).
type edit func(h *header, keys [][]byte) (keks map[SlotID]*secmem.Buffer, added map[uint32]*secmem.Buffer, err error)

// updateHeader applies fn to the current header and writes the result,
// compare-and-set on the header's version, under the header lock. On a
// version conflict (a writer that does not take the lock) it re-reads the
// header and applies fn again, up to headerRetries times.
func (v *Vault) updateHeader(ctx context.Context, fn edit) error {
	l, err := v.locks.lock(ctx, backends.HeaderName)
	if err != nil {
		return fmt.Errorf("vault: lock header: %w", err)
	}
	defer l.Unlock(context.WithoutCancel(ctx))
	// Finish a purge left pending first: the change below replaces the
	// kept previous header, which is the pending purge's marker.
	if err := v.reload(ctx); err != nil {
		return err
	}
	if err := v.purgeLocked(ctx); err != nil {
		return err
	}
	if err := v.updateHeaderLocked(ctx, fn); err != nil {
		return err
	}
	return v.purgeLocked(ctx)
}

// updateHeaderLocked is updateHeader for callers that hold the header
// lock.
func (v *Vault) updateHeaderLocked(ctx context.Context, fn edit) error {
	for attempt := 0; ; attempt++ {
		if err := v.reload(ctx); err != nil {
			return err
		}
		err := v.tryUpdate(ctx, fn)
		if err == nil || !isConflict(err) || attempt+1 == headerRetries {
			return err
		}
	}
}

func (v *Vault) tryUpdate(ctx context.Context, fn edit) error {
	v.mu.RLock()
	if v.closed {
		v.mu.RUnlock()
		return ErrClosed
	}
	h := v.hdr.clone()
	ver := v.hdrVer
	keks, added, err := fn(h, v.keysOf())
	// Copies of the data keys for the new header, in its order.
	var keys []*secmem.Buffer
	if err == nil {
		keys = make([]*secmem.Buffer, len(h.gens))
		for i, n := range h.gens {
			if k := added[n]; k != nil {
				keys[i] = k
				continue
			}
			g := v.generation(n)
			if g == nil {
				panic("vault: edit left a generation without a key")
			}
			keys[i] = secmem.New(keySize)
			copy(keys[i].Bytes(), g.key.Bytes())
		}
		h.sign(keys[len(keys)-1].Bytes())
	}
	v.mu.RUnlock()
	forget := func() {
		for _, k := range keks {
			k.Destroy()
		}
		destroyAll(keys)
	}
	if err != nil {
		forget()
		for _, k := range added {
			k.Destroy()
		}
		return err
	}
	newVer, err := v.backend.Put(ctx, backends.HeaderName, h.encode(), ver)
	if err != nil {
		forget()
		return fmt.Errorf("vault: write header: %w", err)
	}
	if err := v.install(h, newVer, keys); err != nil {
		for _, k := range keks {
			k.Destroy()
		}
		return err
	}
	v.mu.Lock()
	for id, k := range keks {
		if old := v.keks[id]; old != nil {
			old.Destroy()
		}
		v.keks[id] = k
	}
	v.mu.Unlock()
	return nil
}
