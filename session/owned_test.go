package session_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// closeRecorder records when it is closed and returns err. It stands in
// for a user's own io.Closer, the interface WithOwned takes.
type closeRecorder struct {
	name  string
	log   *[]string
	err   error
	calls int
}

func (c *closeRecorder) Close() error {
	c.calls++
	*c.log = append(*c.log, c.name)
	return c.err
}

// TestWithOwnedClosesTheStack builds the common stack (file backend,
// vault, Manager) with WithOwned(v, b) and checks that the Manager's one
// Close flushes the session, then closes the vault (its stores refuse
// with vault.ErrClosed) and the backend (its calls fail with
// backends.ErrUnavailable), and that a second Close closes nothing again.
func TestWithOwnedClosesTheStack(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")
	pass := []byte("owned stack passphrase")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Create(ctx, b, vault.WithPassphrase(pass), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	after := &closeRecorder{name: "after", log: &log}
	m, err := session.NewManager(ctx, v.Store("trader"), session.WithOwned(v, b, after))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	tokens := session.NewAuthTokens([]byte("access-owned"), []byte("refresh-owned"), &exp)
	if err := m.CreateSession(ctx, tokens, nil, nil); err != nil {
		t.Fatal(err)
	}
	tokens.Destroy()
	m.MarkAPICall("api.example") // written behind: Close must flush it before closing the vault

	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := v.Store("trader").Lock(ctx); !errors.Is(err, vault.ErrClosed) {
		t.Errorf("vault store after Manager.Close: %v, want vault.ErrClosed", err)
	}
	if _, _, err := b.Get(ctx, backends.HeaderName); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("backend after Manager.Close: %v, want backends.ErrUnavailable", err)
	}
	if after.calls != 1 {
		t.Errorf("the owned closer after the backend was closed %d times, want 1", after.calls)
	}
	if err := m.Close(ctx); err != nil || after.calls != 1 {
		t.Errorf("second Close: %v, owned closer called %d times in all, want nil and 1", err, after.calls)
	}

	// The flush landed before the vault was closed: a new stack reads the
	// API call back.
	b2, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := vault.Open(ctx, b2, vault.WithPassphrase(pass), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := session.NewManager(ctx, v2.Store("trader"), session.WithOwned(v2, b2))
	if err != nil {
		t.Fatal(err)
	}
	if md, ok := m2.Metadata(); !ok || md.LastAPICallAt == nil {
		t.Error("the API call MarkAPICall recorded was not flushed before the vault closed")
	}
	if err := m2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWithOwnedOrderAndErrors checks that owned closers are closed in the
// order given, every one of them even when an earlier one fails, and that
// Close returns their errors joined.
func TestWithOwnedOrderAndErrors(t *testing.T) {
	ctx := context.Background()
	b, err := file.New(filepath.Join(t.TempDir(), "vault"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("order")), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	errFirst, errThird := errors.New("first failed"), errors.New("third failed")
	first := &closeRecorder{name: "first", log: &log, err: errFirst}
	second := &closeRecorder{name: "second", log: &log}
	third := &closeRecorder{name: "third", log: &log, err: errThird}
	m, err := session.NewManager(ctx, v.Store("s"), session.WithOwned(first, second), session.WithOwned(nil, third, v, b))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Close(ctx)
	if !errors.Is(err, errFirst) || !errors.Is(err, errThird) {
		t.Errorf("Close: %v, want both closers' errors", err)
	}
	if got := len(log); got != 3 || log[0] != "first" || log[1] != "second" || log[2] != "third" {
		t.Errorf("close order %v, want [first second third]", log)
	}
	if _, _, err := b.Get(ctx, backends.HeaderName); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("backend after a failed owned closer: %v, want it closed anyway", err)
	}
}

// TestWithOwnedNotTakenOnFailure checks that a NewManager that fails
// closes nothing: the caller still owns the vault and the backend.
func TestWithOwnedNotTakenOnFailure(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("right")), vault.WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// A session stored as garbage: NewManager must fail, not start fresh.
	if _, err := v.Store("broken").Seal(ctx, []byte("not json"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	var log []string
	rec := &closeRecorder{name: "rec", log: &log}
	if _, err := session.NewManager(ctx, v.Store("broken"), session.WithOwned(v, b, rec)); err == nil {
		t.Fatal("NewManager loaded a session that is not JSON")
	}
	if rec.calls != 0 {
		t.Errorf("a failed NewManager closed an owned closer")
	}
	if _, _, err := b.Get(ctx, backends.HeaderName); err != nil {
		t.Errorf("backend after a failed NewManager: %v, want it still open", err)
	}
	if _, err := v.Store("other").Seal(ctx, []byte("{}"), backends.Absent); err != nil {
		t.Errorf("vault after a failed NewManager: %v, want it still open", err)
	}
}
