package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

var cmdRm = &command{
	name:    "rm",
	args:    "NAME",
	summary: "delete a session (and its previous generation)",
	help: `Deletes the session NAME from the vault, together with the previous
generation kept for 'verify --recover'. It asks for the passphrase (or the
keychain) first, even though the files could be deleted without it: the
command acts only for someone who can open the vault.

It asks "Delete session NAME? [y/N]" on the terminal. Without a terminal
(a script, a pipe) it needs --yes, and exits 2 having deleted nothing.`,
	min: 1, max: 1,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		yes := fs.Bool("yes", false, "delete without asking")
		return func(ctx context.Context, a *app, args []string) error {
			v, err := a.openVault(ctx)
			if err != nil {
				return err
			}
			defer v.Close()
			st := v.Store(args[0])
			// Check it exists before asking about it.
			plain, _, err := st.Open(ctx)
			secmem.Wipe(plain)
			if errors.Is(err, backends.ErrNotFound) {
				return a.sessionErr(args[0], err)
			}
			if !*yes {
				ok, err := a.confirm(ctx, "Delete session "+strconv.Quote(args[0])+"? [y/N] ", "rm: deleting "+strconv.Quote(args[0]))
				if err != nil {
					return err
				}
				if !ok {
					return a.emit(map[string]any{"name": args[0], "removed": false}, func(w io.Writer) {
						fmt.Fprintf(w, "kept %q\n", args[0])
					})
				}
			}
			if err := st.Delete(ctx, backends.Any); err != nil {
				return a.sessionErr(args[0], err)
			}
			return a.emit(map[string]any{"name": args[0], "removed": true}, func(w io.Writer) {
				fmt.Fprintf(w, "removed %q\n", args[0])
			})
		}
	},
}

var cmdGC = &command{
	name:    "gc",
	summary: "delete sessions that cannot be revived",
	help: `Deletes every session that can never be used again without a new login:
its access token is past its expires_at (or empty), and it has no refresh
token or a refresh token that is a JWT whose exp (read without verifying
the signature) has passed. A session with a valid access token, or with
a refresh token that may still work, is kept, whatever its cookies: a
bot idle overnight refreshes in the morning. (The summary line's
validity, which also asks for the auth cookies, is not gc's rule.)

A session that cannot be opened is never deleted: it is reported (run
'vaultctl verify --recover'). A session that another process updates
while gc runs is kept (the delete checks its version).

gc lists what it would delete, with the reason, and asks "[y/N]" on the
terminal. Without a terminal it needs --yes, and exits 2 having deleted
nothing. With --dry-run it only lists.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		dry := fs.Bool("dry-run", false, "list what would be deleted, delete nothing")
		yes := fs.Bool("yes", false, "delete without asking")
		return func(ctx context.Context, a *app, _ []string) error {
			return a.gc(ctx, *dry, *yes)
		}
	},
}

type gcEntry struct {
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`

	ver backends.Version
}

func (a *app) gc(ctx context.Context, dry, yes bool) error {
	v, err := a.openVault(ctx)
	if err != nil {
		return err
	}
	defer v.Close()
	names, err := v.Sessions(ctx)
	if err != nil {
		return a.explain(err)
	}
	now := time.Now()
	var dead, failed []gcEntry
	kept := 0
	var worst error
	for _, name := range names {
		plain, ver, err := v.Store(name).Open(ctx)
		if err != nil {
			failed = append(failed, gcEntry{Name: name, Error: oneLine(err.Error())})
			worst = pickWorse(worst, err)
			continue
		}
		s, err := parseSession(plain, fmt.Sprintf("session %q", name))
		secmem.Wipe(plain)
		if err != nil {
			failed = append(failed, gcEntry{Name: name, Error: oneLine(err.Error())})
			worst = pickWorse(worst, err)
			continue
		}
		reason, unrevivable := s.Unrevivable(now)
		s.Destroy()
		if !unrevivable {
			kept++
			continue
		}
		dead = append(dead, gcEntry{Name: name, Reason: reason, ver: ver})
	}

	if !dry && !yes && len(dead) > 0 {
		if !a.json {
			for _, e := range dead {
				fmt.Fprintf(a.stdout, "would remove %q (%s)\n", e.Name, e.Reason)
			}
		}
		ok, err := a.confirm(ctx, fmt.Sprintf("Delete %d session(s)? [y/N] ", len(dead)),
			fmt.Sprintf("gc: deleting %d session(s)", len(dead)))
		if err != nil {
			return err
		}
		if !ok {
			kept += len(dead)
			dead = nil
		}
	}

	removed := []gcEntry{}
	for _, e := range dead {
		if !dry {
			if err := v.Store(e.Name).Delete(ctx, e.ver); err != nil {
				if errors.Is(err, backends.ErrConflict) {
					kept++ // updated meanwhile
					continue
				}
				failed = append(failed, gcEntry{Name: e.Name, Error: oneLine(err.Error())})
				worst = pickWorse(worst, err)
				continue
			}
		}
		removed = append(removed, e)
	}
	if failed == nil {
		failed = []gcEntry{}
	}
	err = a.emit(map[string]any{
		"dry_run":    dry,
		"removed":    removed,
		"kept":       kept,
		"unreadable": failed,
	}, func(w io.Writer) {
		verb := "removed"
		if dry {
			verb = "would remove"
		}
		if dry || yes {
			for _, e := range removed {
				fmt.Fprintf(w, "%s %q (%s)\n", verb, e.Name, e.Reason)
			}
		} else {
			for _, e := range removed {
				fmt.Fprintf(w, "removed %q\n", e.Name)
			}
		}
		for _, e := range failed {
			fmt.Fprintf(w, "kept %q: cannot be opened: %s\n", e.Name, e.Error)
		}
		fmt.Fprintf(w, "%d %s, %d kept\n", len(removed), verb, kept+len(failed))
	})
	if err != nil {
		return err
	}
	if worst != nil {
		return withHint(a.explain(fmt.Errorf("gc: %d session(s) could not be opened and were kept: %w", len(failed), worst)),
			"run 'vaultctl verify --recover'")
	}
	return nil
}

// confirm asks prompt on the terminal and reports whether the answer was
// yes. Without a terminal it is a usage error (exit 2) naming what needs
// --yes.
func (a *app) confirm(ctx context.Context, prompt, what string) (bool, error) {
	noTTY := usagef("%s needs a confirmation: no terminal to ask on, pass --yes (nothing was deleted)", what)
	if a.openTerminal == nil {
		return false, noTTY
	}
	t, err := a.openTerminal()
	if err != nil {
		return false, noTTY
	}
	defer t.Close()
	ok, err := t.Confirm(ctx, prompt)
	if errors.Is(err, errNoTerminal) {
		return false, noTTY
	}
	return ok, err
}
