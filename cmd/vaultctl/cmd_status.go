package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

var cmdStatus = &command{
	name:    "status",
	summary: "show the vault (key slots, KDF, generation) and every session's summary",
	help: `Shows the vault: its id, key slots (passphrase with its argon2id parameters,
keychain), and key generation; then one summary line per session. The vault
is unlocked once (one argon2id run) however many sessions it holds. No
secret is printed.

A session that cannot be opened is listed with the reason, and the exit
code says why (5: corrupt or tampered).`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(ctx context.Context, a *app, _ []string) error {
			return a.status(ctx)
		}
	},
}

// statusEntry is one session in status: its report, or why it could not
// be read.
type statusEntry struct {
	sessionReport
	Error string `json:"error,omitempty"`
}

func (a *app) status(ctx context.Context) error {
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
	entries := make([]statusEntry, 0, len(names))
	var worst error
	p := a.newProgress("status", len(names))
	for i, name := range names {
		s, sum, err := loadSession(ctx, v, name)
		if err != nil {
			entries = append(entries, statusEntry{sessionReport: sessionReport{Name: name}, Error: oneLine(err.Error())})
			worst = pickWorse(worst, err)
			p.update(i + 1)
			continue
		}
		entries = append(entries, statusEntry{sessionReport: report(name, s, now, sum)})
		s.Destroy()
		p.update(i + 1)
	}
	p.finish()
	info := vaultDoc(v)
	err = a.emit(map[string]any{"location": a.where(), "vault": info, "sessions": entries}, func(w io.Writer) {
		fmt.Fprintf(w, "vault %s in %s\n", info.ID, a.where())
		printVault(w, info)
		fmt.Fprintf(w, "sessions: %d\n", len(entries))
		for _, e := range entries {
			if e.Error != "" {
				fmt.Fprintf(w, "  %s: UNREADABLE: %s\n", e.Name, e.Error)
				continue
			}
			fmt.Fprintf(w, "  %s: %s\n", e.Name, e.Summary)
		}
	})
	if err != nil {
		return err
	}
	if worst != nil {
		n := 0
		for _, e := range entries {
			if e.Error != "" {
				n++
			}
		}
		return withHint(fmt.Errorf("status: %d session(s) could not be opened; the first problem: %w", n, worst), "run 'vaultctl verify --recover'")
	}
	return nil
}

var cmdVerify = &command{
	name:    "verify",
	summary: "open every session; check permissions, symlinks and KDF policy",
	help: `Checks the vault: the folder and files are private to you (no group or
other access, no symlinks: the storage refuses anything else), every key
slot's argon2id parameters meet the current floor, and every session opens
and parses. Every entry of the vault folder that the storage's layout does
not have is reported with what it holds (a copy of a header holds key
material); only a leftover temp file of sealed bytes is called harmless.

With --recover, a session that does not open (a damaged or truncated file)
is restored from its previous generation, which the storage keeps, and
checked again. A damaged vault header (vault.hdr) is restored from its
previous generation too, if that opens with the passphrase or keychain
given and every session opens under it; it is kept as the previous
generation in turn. If some sessions would not open under it (sealed under
a key that only the damaged header held), nothing is changed and they are
listed: --force restores the header anyway, and those sessions are then
rolled back to their own previous generation where one opens.

Exit code 0 when everything is sound (or was recovered), else the most
telling problem's code: 7 permissions, 5 corrupt, 4 wrong passphrase, ...`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		recover := fs.Bool("recover", false, "restore a damaged header and damaged sessions from their previous generation")
		force := fs.Bool("force", false, "with --recover: restore the header's previous generation even if some sessions do not open under it")
		return func(ctx context.Context, a *app, _ []string) error {
			if *force && !*recover {
				return usagef("verify: --force applies to --recover only")
			}
			return a.verify(ctx, *recover, *force)
		}
	},
}

// headerDoc is what verify --recover found and did about the header.
type headerDoc struct {
	Damaged    bool                  `json:"damaged"`
	Damage     string                `json:"damage,omitempty"`
	Recovered  bool                  `json:"recovered"`
	Checked    int                   `json:"sessions_checked"`
	Unopenable []headerUnopenableDoc `json:"unopenable,omitempty"`
}

type headerUnopenableDoc struct {
	Name          string `json:"name"`
	Error         string `json:"error"`
	PreviousOpens bool   `json:"previous_opens"`
}

func newHeaderDoc(rep *vault.HeaderRecovery) *headerDoc {
	if rep == nil || rep.Damage == nil {
		return nil
	}
	d := &headerDoc{Damaged: true, Damage: oneLine(rep.Damage.Error()), Recovered: rep.Restored, Checked: rep.Sessions}
	for _, u := range rep.Unopenable {
		d.Unopenable = append(d.Unopenable, headerUnopenableDoc{Name: u.Name, Error: oneLine(u.Err.Error()), PreviousOpens: u.PreviousOpens})
	}
	return d
}

// recoverHeader opens the vault for verify --recover: through
// vault.RecoverHeader, which repairs a damaged header first. When it
// refuses or fails, what it found is printed and the error returned.
func (a *app) recoverHeader(ctx context.Context, force bool) (*vault.Vault, *headerDoc, error) {
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	opts, wipe, err := a.unlockOptions(ctx)
	if err != nil {
		return nil, nil, err
	}
	v, rep, err := vault.RecoverHeader(ctx, b, force, opts...)
	wipe()
	hd := newHeaderDoc(rep)
	if err == nil {
		return v, hd, nil
	}
	var hre *vault.HeaderRecoveryError
	if !errors.As(err, &hre) {
		if hd == nil || errors.Is(err, vault.ErrWrongKey) || !errors.Is(err, vault.ErrCorrupt) {
			return nil, nil, a.explain(err)
		}
		return nil, nil, withHint(err, "the header's previous generation cannot be restored: restore "+a.headerPath()+" from a backup")
	}
	err = withHint(err, "run 'vaultctl verify --recover --force' to restore the header anyway (those sessions are then rolled back to their previous generation where it opens, else stay unreadable), or restore "+a.headerPath()+" from a backup")
	if a.json {
		a.writeJSON(map[string]any{"ok": false, "location": a.where(), "header": hd, "error": map[string]any{
			"code": exitCorrupt, "kind": errorKind(exitCorrupt), "message": oneLine(err.Error()),
		}})
		return nil, nil, err
	}
	fmt.Fprintf(a.stdout, "problem: the vault header is damaged: %s\n", hd.Damage)
	for _, u := range hd.Unopenable {
		prev := "its own previous generation does not open either"
		if u.PreviousOpens {
			prev = "its previous generation opens under it"
		}
		fmt.Fprintf(a.stdout, "%s: does not open under the header's previous generation (%s): %s\n", u.Name, prev, u.Error)
	}
	fmt.Fprintf(a.stdout, "header not restored: %d of %d sessions would not open under its previous generation\n", len(hd.Unopenable), hd.Checked)
	return nil, nil, err
}

// headerPath names the header for messages: the file, or the Redis key.
func (a *app) headerPath() string {
	if a.backend == "file" {
		return filepath.Join(a.dir, "vault.hdr")
	}
	return "the vault header"
}

type verifyEntry struct {
	Name      string `json:"name"`
	OK        bool   `json:"ok"`
	Recovered bool   `json:"recovered,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (a *app) verify(ctx context.Context, recover, force bool) error {
	var (
		v   *vault.Vault
		hd  *headerDoc
		err error
	)
	if recover {
		v, hd, err = a.recoverHeader(ctx, force)
	} else {
		v, err = a.openVault(ctx)
	}
	if err != nil {
		return err
	}
	defer v.Close()
	// problems make verify fail; notes are worth knowing but harmless.
	problems, notes := []string{}, []string{}
	var worst error
	if a.backend == "file" {
		for _, fp := range checkVaultFiles(a.dir) {
			if fp.Harmless {
				notes = append(notes, fp.String())
				continue
			}
			problems = append(problems, fp.String())
			code := exitError
			if fp.Unsafe {
				code = exitPermission
			}
			worst = pickWorse(worst, &codedError{err: fmt.Errorf("%s", fp), code: code})
		}
	}
	info := vaultDoc(v)
	for _, s := range info.Slots {
		if s.KDF == nil {
			continue
		}
		p := s.KDF.params()
		if err := kdf.DefaultPolicy.Check(p); err != nil {
			problems = append(problems, fmt.Sprintf("key slot %s: %v: run 'vaultctl passwd' to re-derive it with current parameters", s.ID, err))
			worst = pickWorse(worst, &codedError{err: err, code: exitError})
		} else if p.Time < kdf.Default.Time || p.MemoryKiB < kdf.Default.MemoryKiB {
			notes = append(notes, fmt.Sprintf("key slot %s uses %v, above the floor but weaker than the default %v: 'vaultctl passwd' re-derives it", s.ID, p, kdf.Default))
		}
	}
	if perr := v.Info().PurgeErr; perr != nil {
		// Open could not remove the copies a retired passphrase, a
		// removed slot or a dropped key generation still opens.
		problems = append(problems, fmt.Sprintf("retired credentials still open copies the storage keeps: %v: run 'vaultctl verify' again once the storage is writable", perr))
		worst = pickWorse(worst, &codedError{err: perr, code: exitError})
	}
	if info.Rotating {
		notes = append(notes, fmt.Sprintf("a rotation was interrupted (generations %v, every session still opens): run 'vaultctl rotate-key' to finish it", info.Generations))
	}
	names, err := v.Sessions(ctx)
	if err != nil {
		return a.explain(err)
	}
	entries := make([]verifyEntry, 0, len(names))
	p := a.newProgress("verify", len(names))
	for i, name := range names {
		e := verifyEntry{Name: name}
		err := checkSession(ctx, v, name)
		if err != nil && recover && canRecover(err) {
			if _, rerr := v.Recover(ctx, name); rerr == nil {
				if err = checkSession(ctx, v, name); err == nil {
					e.Recovered = true
				}
			} else {
				err = fmt.Errorf("%w; recovery failed: %v", err, rerr)
			}
		}
		if err != nil {
			e.Error = oneLine(err.Error())
			worst = pickWorse(worst, err)
		} else {
			e.OK = true
		}
		entries = append(entries, e)
		p.update(i + 1)
	}
	p.finish()
	ok := worst == nil
	doc := map[string]any{"ok": ok, "location": a.where(), "vault": info, "sessions": entries, "problems": problems, "notes": notes}
	if hd != nil {
		doc["header"] = hd
	}
	err = a.emit(doc, func(w io.Writer) {
		if hd != nil {
			kept := "its spare copy was written again"
			if len(hd.Unopenable) > 0 {
				kept = "the damaged header is kept as the previous generation"
			}
			fmt.Fprintf(w, "header: damaged (%s); recovered from its previous generation, which opens %d of %d sessions (%s)\n",
				hd.Damage, hd.Checked-len(hd.Unopenable), hd.Checked, kept)
		}
		for _, pr := range problems {
			fmt.Fprintf(w, "problem: %s\n", pr)
		}
		for _, n := range notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		for _, e := range entries {
			switch {
			case e.Recovered:
				fmt.Fprintf(w, "%s: recovered from its previous generation\n", e.Name)
			case !e.OK:
				fmt.Fprintf(w, "%s: FAILED: %s\n", e.Name, e.Error)
			}
		}
		n := 0
		for _, e := range entries {
			if e.OK {
				n++
			}
		}
		fmt.Fprintf(w, "%d of %d sessions open; ", n, len(entries))
		if ok {
			fmt.Fprintln(w, "vault OK")
		} else {
			fmt.Fprintln(w, "vault has problems")
		}
	})
	if err != nil {
		return err
	}
	if worst != nil {
		hint := "run 'vaultctl verify --recover'"
		if recover {
			hint = "restore the damaged sessions from a backup, or remove them with 'vaultctl rm'"
		}
		return withHint(fmt.Errorf("verify: %w", worst), hint)
	}
	return nil
}

// checkSession opens and parses one session, wiping what it read.
func checkSession(ctx context.Context, v *vault.Vault, name string) error {
	s, _, err := loadSession(ctx, v, name)
	if err != nil {
		return err
	}
	s.Destroy()
	return nil
}

// canRecover reports whether a failure is damage that the previous
// generation may undo (not a missing key or a permission problem).
func canRecover(err error) bool {
	return !errors.Is(err, backends.ErrPermission) && !errors.Is(err, vault.ErrWrongKey) &&
		!errors.Is(err, backends.ErrUnavailable) && !errors.Is(err, context.Canceled)
}
