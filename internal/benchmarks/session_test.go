package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/session"
)

// updateTokens is the session manager's durable path: UpdateTokens with
// auto-save on a file-backed vault (marshal the session, seal it, store
// it durably before returning). It returns the contender and the size of
// the plaintext session it writes.
func updateTokens(tb testing.TB) (contender, int) {
	tb.Helper()
	ctx := context.Background()
	v := openFileVault(tb, vaultDir(tb), true, setupParams)
	st := v.Store("bot")
	if _, err := st.Seal(ctx, SessionJSON(RealisticSize), ""); err != nil {
		tb.Fatal(err)
	}
	m, err := session.NewManager(ctx, st, session.WithAutoSave(true))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close(ctx) })
	snap, err := m.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	// Tokens of the stored session's lengths, so that every write has the
	// realistic session's size.
	access := make([]byte, snap.Tokens.AccessToken.Len())
	copy(access, snap.Tokens.AccessToken.Bytes())
	refresh := make([]byte, snap.Tokens.RefreshToken.Len())
	copy(refresh, snap.Tokens.RefreshToken.Bytes())
	pt, err := snap.MarshalPlaintext()
	if err != nil {
		tb.Fatal(err)
	}
	size := len(pt)
	clear(pt)
	snap.Destroy()
	exp := time.Now().Add(time.Hour)
	return contender{name: "update-tokens", op: func(i int) error {
		// A different token each time, of the same length.
		access[i%len(access)] ^= 1
		t := session.NewAuthTokens(access, refresh, &exp)
		err := m.UpdateTokens(ctx, t)
		t.Destroy()
		return err
	}}, size
}

// BenchmarkUpdateTokens races Manager.UpdateTokens with auto-save on a
// file-backed vault (durable on return) against the physical durable write
// of the same number of bytes (issue 4's goal: x-physical <= 1.15).
func BenchmarkUpdateTokens(b *testing.B) {
	c, size := updateTokens(b)
	b.ReportAllocs()
	race(b, true, c, physicalWrite(b, SessionJSON(size)))
}
