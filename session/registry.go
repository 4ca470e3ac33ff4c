package session

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Registry holds several named sessions, each with its own Manager, and
// which of them is active (the seed's MultiSessionManager). It is safe for
// concurrent use.
//
// The zero value is an empty, usable Registry, as NewRegistry returns.
type Registry struct {
	mu       sync.Mutex
	managers map[string]*Manager
	active   string
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{managers: map[string]*Manager{}}
}

// Add registers m under id. An id already registered is an error matching
// ErrSessionExists. The first session added becomes the active one.
func (r *Registry) Add(id string, m *Manager) error {
	if m == nil {
		panic("session: Registry.Add with a nil Manager")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.managers[id]; ok {
		return ErrSessionExists
	}
	if r.managers == nil { // the zero Registry
		r.managers = map[string]*Manager{}
	}
	r.managers[id] = m
	if len(r.managers) == 1 {
		r.active = id
	}
	return nil
}

// Get returns the Manager registered under id, or an
// *UnknownSessionError (matching ErrNotAuthenticated).
func (r *Registry) Get(id string) (*Manager, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.managers[id]
	if !ok {
		return nil, &UnknownSessionError{ID: id}
	}
	return m, nil
}

// Switch makes id the active session. An unknown id is an
// *UnknownSessionError matching ErrNotAuthenticated, as in the seed, and
// leaves the active session unchanged.
func (r *Registry) Switch(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.managers[id]; !ok {
		return &UnknownSessionError{ID: id}
	}
	r.active = id
	return nil
}

// Active returns the active session's id and Manager; false if there is
// none.
func (r *Registry) Active() (string, *Manager, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.managers[r.active]
	if !ok {
		return "", nil, false
	}
	return r.active, m, true
}

// IDs returns the registered ids, sorted.
func (r *Registry) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.managers))
	for id := range r.managers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Remove unregisters id and returns its Manager, which it does not close.
// If id was active, no session is active afterwards.
func (r *Registry) Remove(id string) (*Manager, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.managers[id]
	if !ok {
		return nil, &UnknownSessionError{ID: id}
	}
	delete(r.managers, id)
	if r.active == id {
		r.active = ""
	}
	return m, nil
}

// CleanupExpired clears (ClearSession: wipe and delete the stored copy)
// every registered session that is not valid, as the seed's
// cleanup_expired_sessions does: tokens expired, or an auth cookie
// missing. Managers stay registered, empty. It returns the ids it cleared
// and the errors of those it could not delete, joined.
func (r *Registry) CleanupExpired(ctx context.Context) ([]string, error) {
	var cleared []string
	var errs []error
	for _, id := range r.IDs() {
		m, err := r.Get(id)
		if err != nil || !m.HasSession() || m.IsSessionValid() {
			continue
		}
		if err := m.ClearSession(ctx); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
			continue
		}
		cleared = append(cleared, id)
	}
	return cleared, errors.Join(errs...)
}

// Close closes every registered Manager (flushing and wiping) and empties
// the Registry.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	ms := r.managers
	r.managers = map[string]*Manager{}
	r.active = ""
	r.mu.Unlock()
	var errs []error
	for _, m := range ms {
		errs = append(errs, m.Close(ctx))
	}
	return errors.Join(errs...)
}
