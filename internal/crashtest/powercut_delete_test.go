//go:build linux

package crashtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/powerloss"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

func init() { powerRoles["logout"] = logoutChild }

// logoutChild logs out of the sessions of the vault at args[0] one by
// one, from index args[1] to args[2] (exclusive), with the Manager's
// ClearSession, and reports "ack I" after session I was deleted.
func logoutChild(args []string) error {
	ctx := context.Background()
	from, err1 := strconv.Atoi(args[1])
	to, err2 := strconv.Atoi(args[2])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	v, b, err := openWithBackend(ctx, args[0], passA)
	if err != nil {
		return err
	}
	defer b.Close()
	defer v.Close()
	reexec.Report("ready")
	for i := from; i < to; i++ {
		m, err := session.NewManager(ctx, v.Store(manyName(i)), session.WithAutoSave(true))
		if err != nil {
			reexec.Report("error manager %d: %v", i, err)
			return err
		}
		if err := m.ClearSession(ctx); err != nil {
			reexec.Report("error clear %d: %v", i, err)
			return err
		}
		reexec.Report("ack %d", i)
	}
	return nil
}

// TestPowerCutLogout cuts the power under logouts (ClearSession deletes
// the stored session: a credential left at rest after a logout is a live
// one): after every cut a logout that returned stays done (the session
// is neither listed nor opens), and every session not logged out opens
// with its content.
func TestPowerCutLogout(t *testing.T) {
	fs, dir := mountVault(t)
	n := powerSessions()
	createMany(t, dir, n)
	next := 0 // sessions [0, next) are logged out
	w := powerloss.Workload{
		Name:  "powercut/logout",
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start("logout", reexec.Options{}, dir, strconv.Itoa(next), strconv.Itoa(n))
		},
		Checks: append([]powerloss.Check{{Name: "logout", Fn: func(ctx context.Context, r *powerloss.Round) error {
			acked := r.Acked(next - 1)
			r.Figures.Add("acked_logouts", int64(acked+1-next))
			v, b, err := openWithBackend(ctx, dir, passA)
			if err != nil {
				r.Figures.Inc("unreadable_vaults")
				return fmt.Errorf("vault does not open: %w", err)
			}
			defer b.Close()
			defer v.Close()
			names, err := v.Sessions(ctx)
			if err != nil {
				return err
			}
			gone := 0
			for i := range n {
				listed := slices.Contains(names, manyName(i))
				_, _, oerr := v.Store(manyName(i)).Open(ctx)
				switch {
				case i <= acked && (listed || !errors.Is(oerr, vault.ErrNotFound)):
					r.Figures.Inc("resurrected")
					return fmt.Errorf("session %d was logged out, but it is back (listed %v, open: %v)", i, listed, oerr)
				case i > acked+1 && (!listed || oerr != nil):
					r.Figures.Inc("unreadable_sessions")
					return fmt.Errorf("session %d was never logged out, but it does not open: %v", i, oerr)
				case !listed:
					gone++
				}
			}
			next = gone
			if next == n { // all logged out: log in again, durably
				next = 0
				for i := range n {
					m, err := session.NewManager(ctx, v.Store(manyName(i)), session.WithAutoSave(true))
					if err != nil {
						return err
					}
					if err := m.CreateSession(ctx, session.NewAuthTokens([]byte(manyToken(i)), []byte("r"), nil), nil, nil); err != nil {
						return err
					}
				}
				r.Figures.Inc("relogins")
			}
			return nil
		}}}, postCut(dir, passA)...),
	}
	f := powerloss.Run(t, fs, w, powerloss.Config{Cuts: powerCuts(12), MaxSyncs: 2*n + 4, Window: 40 * time.Millisecond, Seed: powerSeed()})
	f.Declare("acked_logouts", "unreadable_vaults", "unreadable_sessions", "resurrected", "relogins")
	f.Add("sessions", int64(n))
	f.Report(t)
	zeroFigures(t, f, "unreadable_vaults", "unreadable_sessions", "resurrected")
	if f.Get("acked_logouts") == 0 {
		t.Error("no logout was acknowledged: the harness tested nothing")
	}
}
