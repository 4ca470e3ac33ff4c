package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// HeaderRecovery reports what RecoverHeader found and did. It holds no
// secret.
//
// The zero value reports that nothing was checked or restored.
type HeaderRecovery struct {
	// Damage is why the current header did not open: an error matching
	// ErrCorrupt (or ErrTooLarge). Nil when it opened and nothing was
	// done.
	Damage error

	// Restored reports whether the previous generation of the header is
	// now the current one.
	Restored bool

	// Sessions is how many sessions were opened under the previous
	// generation of the header to decide.
	Sessions int

	// Unopenable lists, sorted by name, the sessions that do not open
	// under the previous generation of the header.
	Unopenable []UnopenableSession
}

// UnopenableSession is a session that does not open under the header a
// recovery would restore.
//
// The zero value names no session.
type UnopenableSession struct {
	Name string
	// Err says why: a *FormatError matching ErrCorrupt, whose Field is
	// "generation" for a session sealed under a key generation the
	// restored header lacks (added by the damaged header's last write,
	// as the first step of a rotation does), or a backend error.
	Err error
	// PreviousOpens reports whether the session's own previous
	// generation opens under that header: after a forced restore,
	// Vault.Recover can bring it back, at the cost of the session's last
	// update.
	PreviousOpens bool
}

// HeaderRecoveryError is RecoverHeader's refusal to restore a previous
// header generation under which some sessions would not open. It matches
// ErrCorrupt: the header is still damaged.
//
// A zero HeaderRecoveryError is not a meaningful error: the package makes
// them.
type HeaderRecoveryError struct {
	Damage     error    // why the current header does not open
	Unopenable []string // the sessions that would stay unreadable
}

func (e *HeaderRecoveryError) Error() string {
	names := e.Unopenable
	more := ""
	if len(names) > 5 {
		names, more = names[:5], fmt.Sprintf(" and %d more", len(e.Unopenable)-5)
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return fmt.Sprintf("vault: the header is damaged and its previous generation opens, but %d session(s) do not open under it (%s%s): not restored without force",
		len(e.Unopenable), strings.Join(quoted, ", "), more)
}

// Unwrap returns ErrCorrupt and the damage.
func (e *HeaderRecoveryError) Unwrap() []error { return []error{ErrCorrupt, e.Damage} }

// damagedHeaderError is a damaged header that RecoverHeader could not
// repair, and why. It matches ErrCorrupt and the damage.
type damagedHeaderError struct {
	damage error
	why    string
}

func (e *damagedHeaderError) Error() string { return e.damage.Error() + "; " + e.why }

func (e *damagedHeaderError) Unwrap() []error { return []error{ErrCorrupt, e.damage} }

// headerDamaged reports whether an error from opening a header means the
// stored bytes are damaged (rather than a wrong key, a newer format, a
// KDF policy refusal or an I/O failure).
func headerDamaged(err error) bool {
	return (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge)) &&
		!errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrUnsupportedVersion)
}

// RecoverHeader opens the vault in b like Open, with the same options;
// if its header is damaged, it repairs it from the backend's previous
// generation of the header (a backends.Recoverer keeps one: the file
// backend's .vault.hdr.prev) and returns the Vault opened on it.
//
// It acts only on damage: a header that does not parse (a checksum,
// magic or structure error: a flipped bit, a truncated file) or whose
// MAC fails after a key slot opened, all matching ErrCorrupt. A wrong
// passphrase or key (ErrWrongKey), a newer format version, a KDF policy
// refusal or a read error are returned as Open returns them, and nothing
// is changed. A header that opens is returned open, unchanged, with a nil
// Damage in the report.
//
// The previous generation is restored only if it opens with the caller's
// credentials (one more argon2id run, or a keychain read) and every
// session stored in b opens under it. A session may not: one sealed under
// a key generation that only the damaged header held (a rotation whose
// first step was the damaged header's last write), or one damaged itself.
// RecoverHeader then lists them in the report and refuses with a
// *HeaderRecoveryError (matching ErrCorrupt), unless force is set: then it
// restores all the same, and those sessions stay unreadable (their blobs
// are kept; Vault.Recover brings back those whose own previous generation
// opens). The restore is a compare-and-set on the damaged header's
// version, under the vault's header lock. After a forced restore the
// damaged header is the previous generation (it may hold the key those
// sessions need) until the next Open or header change, whose purge
// replaces it with a spare of the restored header (see Purge); otherwise
// RecoverHeader
// writes the restored header once more, so that the spare copy is a good
// one again (best effort, as in Create; a crash between the two writes
// leaves the vault opening and the damaged header as the spare, until the
// next header change).
//
// The restored header is normally the spare, a copy of the header as of
// its last change (every change ends with a purge that rewrites it), so
// nothing is undone. Only a header damaged between a change and its purge
// restores the one before that change: a slot added or removed, a
// passphrase changed, a rotation step made in that change is then undone,
// and must be made again (a rotation resumes with RotateKey). Errors: ErrNotFound (no header at all; missing is not
// damage), errors.ErrUnsupported (the backend keeps no previous
// generations; the damage is wrapped too), an error matching ErrCorrupt
// when there is no previous generation or it is damaged as well, and
// ErrWrongKey when the credentials do not open it.
func RecoverHeader(ctx context.Context, b backends.Backend, force bool, opts ...Option) (*Vault, *HeaderRecovery, error) {
	rep := &HeaderRecovery{}
	l, err := locksFor(b).lock(ctx, backends.HeaderName)
	if err != nil {
		return nil, rep, fmt.Errorf("vault: recover header: lock: %w", err)
	}
	defer l.Unlock(context.WithoutCancel(ctx))

	// 1. The current header: open it if it opens.
	blob, ver, err := b.Get(ctx, backends.HeaderName)
	switch {
	case err == nil:
		c := newConfig(opts)
		if c.passErr == nil && c.pass == nil && c.keyStore == nil && c.sealer == nil {
			c.passErr = fmt.Errorf("%w: %w", ErrWrongKey, errNoCredentials)
		}
		if c.passErr != nil {
			c.pass.Destroy()
			return nil, rep, c.passErr
		}
		v, err := openHeaderBlob(ctx, b, c, blob, ver)
		if err == nil {
			return v, rep, nil
		}
		c.pass.Destroy()
		if !headerDamaged(err) {
			return nil, rep, err
		}
		rep.Damage = err
	case errors.Is(err, backends.ErrNotFound):
		return nil, rep, notFound("vault header", err)
	case errors.Is(err, backends.ErrTooLarge):
		// Larger than any blob: not a header this package wrote.
		rep.Damage = &FormatError{Structure: "header", Field: "size", Reason: "larger than the backend's blob limit: " + err.Error(), Err: ErrCorrupt}
		ver = backends.Any
	default:
		return nil, rep, fmt.Errorf("vault: recover header: read: %w", err)
	}

	// 2. Its previous generation must open with the same credentials.
	rec, ok := b.(backends.Recoverer)
	if !ok {
		return nil, rep, fmt.Errorf("%w (%w)", &damagedHeaderError{rep.Damage, "the backend keeps no previous generations to restore"}, errors.ErrUnsupported)
	}
	prev, _, err := rec.Previous(ctx, backends.HeaderName)
	if err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return nil, rep, &damagedHeaderError{rep.Damage, "the backend holds no previous generation of the header to restore"}
		}
		return nil, rep, fmt.Errorf("vault: recover header: read the previous generation: %w", err)
	}
	c := newConfig(opts)
	pv, err := openHeaderBlob(ctx, b, c, prev, "")
	if err != nil {
		c.pass.Destroy()
		return nil, rep, fmt.Errorf("vault: recover header: the previous generation of the header does not open either: %w", err)
	}
	done := false
	defer func() {
		if !done {
			pv.Close()
		}
	}()

	// 3. Every session must open under it.
	names, err := b.List(ctx)
	if err != nil {
		return nil, rep, fmt.Errorf("vault: recover header: list sessions: %w", err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, rep, err
		}
		err := pv.openUnder(ctx, b, name, false)
		if errors.Is(err, backends.ErrNotFound) {
			continue // deleted meanwhile
		}
		rep.Sessions++
		if err == nil {
			continue
		}
		u := UnopenableSession{Name: name, Err: err}
		u.PreviousOpens = pv.openUnder(ctx, b, name, true) == nil
		rep.Unopenable = append(rep.Unopenable, u)
	}
	slices.SortFunc(rep.Unopenable, func(a, b UnopenableSession) int { return strings.Compare(a.Name, b.Name) })
	if len(rep.Unopenable) > 0 && !force {
		e := &HeaderRecoveryError{Damage: rep.Damage}
		for _, u := range rep.Unopenable {
			e.Unopenable = append(e.Unopenable, u.Name)
		}
		return nil, rep, e
	}

	// 4. Restore, compare-and-set on the damaged header's version.
	nv, err := rec.Restore(ctx, backends.HeaderName, ver)
	if err != nil {
		return nil, rep, fmt.Errorf("vault: recover header: restore: %w", err)
	}
	if len(rep.Unopenable) == 0 {
		// Nothing needs the damaged header any more: write the good one
		// again, so that the spare copy is good again too (as Create
		// leaves it). Best effort, as in Create.
		if v2, err := b.Put(ctx, backends.HeaderName, prev, nv); err == nil {
			nv = v2
		}
	}
	pv.mu.Lock()
	pv.hdrVer = nv
	pv.mu.Unlock()
	rep.Restored = true
	done = true
	return pv, rep, nil
}

// openUnder opens the stored session name (its previous generation with
// prev) under v's header as it is, without re-reading the stored header,
// and wipes the plaintext.
func (v *Vault) openUnder(ctx context.Context, b backends.Backend, name string, prev bool) error {
	var (
		blob []byte
		err  error
	)
	if prev {
		blob, _, err = b.(backends.Recoverer).Previous(ctx, name)
	} else {
		blob, _, err = b.Get(ctx, name)
	}
	if err != nil {
		return err
	}
	env, err := parseEnvelope(name, blob)
	if err != nil {
		return err
	}
	plain, known, err := v.openEnvelope(name, env)
	if err != nil {
		return err
	}
	if !known {
		return &FormatError{Structure: "session", Name: name, Field: "generation", Reason: fmt.Sprintf("sealed under key generation %d, which this header does not hold", env.gen), Err: ErrCorrupt}
	}
	secmem.Wipe(plain)
	return nil
}
