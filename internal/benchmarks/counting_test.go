package benchmarks

import (
	"context"
	"sync"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// countingBackend passes every call to a real backend and records when
// each Put happened: the storm benchmark counts the writes a Manager
// issues. It keeps the Locker and Recoverer of the backend it wraps, so
// the vault behaves exactly as it does on that backend.
type countingBackend struct {
	backends.Backend
	mu   sync.Mutex
	puts []time.Time
}

func (c *countingBackend) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	v, err := c.Backend.Put(ctx, name, blob, ifVersion)
	if err == nil && name != backends.HeaderName {
		c.mu.Lock()
		c.puts = append(c.puts, time.Now())
		c.mu.Unlock()
	}
	return v, err
}

// putsSince returns the times of the successful session Puts at or after t.
func (c *countingBackend) putsSince(t time.Time) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, p := range c.puts {
		if !p.Before(t) {
			out = append(out, p)
		}
	}
	return out
}

func (c *countingBackend) Lock(ctx context.Context, name string) (backends.Lock, error) {
	return c.Backend.(backends.Locker).Lock(ctx, name)
}

func (c *countingBackend) Previous(ctx context.Context, name string) ([]byte, backends.Version, error) {
	return c.Backend.(backends.Recoverer).Previous(ctx, name)
}

func (c *countingBackend) Restore(ctx context.Context, name string, ifVersion backends.Version) (backends.Version, error) {
	return c.Backend.(backends.Recoverer).Restore(ctx, name, ifVersion)
}

func (c *countingBackend) DropPrevious(ctx context.Context, name string) error {
	return c.Backend.(backends.Recoverer).DropPrevious(ctx, name)
}
