package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

var cmdImport = &command{
	name:    "import",
	args:    "NAME FILE|-",
	summary: "seal an axiomtrade-rs session file under NAME",
	help: `Reads an axiomtrade-rs session file (the full session, or a tokens-only file
{access_token, refresh_token, expires_at}) from FILE, or from standard input
with "-", checks it, and seals it in the vault under NAME.

A file that is not valid JSON, lacks a required field, or is larger than
1 MiB is refused with a message naming the field; nothing is stored.

With --remove-source, once the sealed copy is durable and reads back equal
to the file, the plaintext file is overwritten with zeros, flushed and
deleted. It is read and zeroed through one descriptor (a symlink at FILE is
refused); a file renamed or linked in its place since it was read is never
touched, and is reported. (On SSDs and copy-on-write file systems the old
blocks may survive the overwrite: keep such a file off disk in the first
place.)`,
	min: 2, max: 2,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		remove := fs.Bool("remove-source", false, "overwrite and delete FILE once the sealed copy is durable and verified")
		force := fs.Bool("force", false, "replace a session that already exists under NAME")
		return func(ctx context.Context, a *app, args []string) error {
			return a.importSession(ctx, args[0], args[1], *remove, *force)
		}
	},
}

// readSource reads an import source with the size cap checked before
// the data is held: at most maxImportSize+1 bytes are ever read.
func (a *app) readSource(src string) ([]byte, error) {
	var r io.Reader
	what := src
	if src == "-" {
		r, what = a.stdin, "standard input"
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, withHint(fmt.Errorf("import: %w", err), "check the path")
		}
		defer f.Close()
		r = f
	}
	return readLimited(r, what)
}

// readLimited reads r, named what in messages, with the size cap checked
// before the data is held; outgrown buffers are wiped.
func readLimited(r io.Reader, what string) ([]byte, error) {
	buf := make([]byte, 0, 16<<10)
	lr := io.LimitReader(r, maxImportSize+1)
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			secmem.Wipe(buf)
			buf = nb
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			secmem.Wipe(buf)
			return nil, fmt.Errorf("import: reading %s: %w", what, err)
		}
	}
	if len(buf) > maxImportSize {
		secmem.Wipe(buf)
		return nil, fmt.Errorf("import: %s is larger than %d bytes: not a session file", what, maxImportSize)
	}
	return buf, nil
}

// parseSession parses session JSON; the error names the field at fault
// and never quotes the input.
func parseSession(b []byte, what string) (*session.AuthSession, error) {
	s, err := session.ParseSession(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}

func (a *app) importSession(ctx context.Context, name, src string, remove, force bool) error {
	if remove && src == "-" {
		return usagef("import: --remove-source needs a FILE, not standard input")
	}
	if err := backends.ValidateName(name); err != nil || name == backends.HeaderName {
		return usagef("import: invalid session name %q: use letters, digits and - _ . @ + (not starting with a dot)", name)
	}
	var (
		raw []byte
		err error
		sf  *sourceFile
	)
	if remove {
		// One descriptor from the read to the zeroing (source.go).
		if sf, err = openSource(src); err != nil {
			return err
		}
		defer sf.close()
		raw, err = readLimited(sf.f, src)
	} else {
		raw, err = a.readSource(src)
	}
	if err != nil {
		return err
	}
	defer secmem.Wipe(raw)
	s, err := parseSession(raw, "import "+displayName(src))
	if err != nil {
		return withHint(err, "fix the file; nothing was stored")
	}
	defer s.Destroy()
	plain, err := s.MarshalPlaintext()
	if err != nil {
		return err
	}
	defer secmem.Wipe(plain)

	v, err := a.openVault(ctx)
	if err != nil {
		return err
	}
	defer v.Close()
	st := v.Store(name)
	ifv := backends.Absent
	if force {
		ifv = backends.Any
	}
	if _, err := st.Seal(ctx, plain, ifv); err != nil {
		if errors.Is(err, backends.ErrConflict) {
			return withHint(fmt.Errorf("import: a session named %q already exists", name), "use --force to replace it, or another NAME")
		}
		return a.explain(err)
	}
	// Read it back through the vault: the sealed copy must open and hold
	// exactly what was parsed before the source may go.
	back, _, err := st.Open(ctx)
	if err != nil {
		return withHint(fmt.Errorf("import: the sealed copy does not read back: %w", err), "the source file was kept")
	}
	same := subtle.ConstantTimeCompare(back, plain) == 1
	secmem.Wipe(back)
	if !same {
		return errors.New("import: the sealed copy differs from the file: the source file was kept")
	}
	// And it loads as a session, which also gives the summary line.
	back2, sum, err := loadSession(ctx, v, name)
	if err != nil {
		return withHint(fmt.Errorf("import: the sealed copy does not load: %w", err), "the source file was kept")
	}
	rep := report(name, back2, time.Now(), sum)
	back2.Destroy()
	removed := false
	if remove {
		if err := sf.shred(); err != nil {
			return withHint(fmt.Errorf("import: sealed as %q, but removing the source failed: %w", name, err), "check what the path names now, and delete the plaintext by hand")
		}
		removed = true
	}
	return a.emit(map[string]any{
		"name":           name,
		"imported":       true,
		"source_removed": removed,
		"session":        rep,
	}, func(w io.Writer) {
		fmt.Fprintf(w, "imported %q\n%s\n", name, rep.Summary)
		if removed {
			fmt.Fprintf(w, "overwrote and removed %s\n", src)
		}
	})
}

// displayName is how a source is named in messages.
func displayName(src string) string {
	if src == "-" {
		return "standard input"
	}
	return src
}

var cmdExport = &command{
	name:    "export",
	args:    "NAME",
	summary: "print a session as axiomtrade-rs JSON (plaintext!)",
	help: `Prints the session NAME on standard output as axiomtrade-rs JSON, with every
token and cookie in clear: the file that library reads. This is the one
command that shows secrets; write it with -o FILE (created 0600) or pipe it
straight to the program that needs it. It refuses to print to a terminal
without --force, and -o refuses an existing file without --force.`,
	min: 1, max: 1,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		var ef exportFlags
		fs.StringVar(&ef.out, "o", "", "write to `FILE` (created 0600) instead of standard output")
		fs.BoolVar(&ef.force, "force", false, "print to a terminal, or replace the -o file")
		return func(ctx context.Context, a *app, args []string) error {
			if ef.out == "" && a.stdoutTTY && !ef.force {
				return a.writeExport(&ef, nil) // refused before any unlock
			}
			v, err := a.openVault(ctx)
			if err != nil {
				return err
			}
			defer v.Close()
			plain, _, err := v.Store(args[0]).Open(ctx)
			if err != nil {
				return a.sessionErr(args[0], err)
			}
			return a.writeExport(&ef, plain)
		}
	},
}

// sessionErr explains a failure to open one session.
func (a *app) sessionErr(name string, err error) error {
	switch {
	case errors.Is(err, backends.ErrNotFound), errors.Is(err, vault.ErrNotFound), errors.Is(err, session.ErrNoSession):
		return withHint(notFoundf("no session named %q", name), "run 'vaultctl status' for the names")
	case errors.Is(err, vault.ErrCorrupt):
		return withHint(err, "run 'vaultctl verify --recover' to restore its previous generation")
	}
	return a.explain(err)
}

var cmdShow = &command{
	name:    "show",
	args:    "NAME",
	summary: "show a session, secrets redacted, and its summary line",
	help: `Shows the session NAME with every token, cookie value and client secret
replaced by [REDACTED], followed by its summary line:

  Session: VALID | Tokens: VALID | Cookies: PRESENT | Turnkey: ACTIVE | Age: 45m | Last API: 2m ago`,
	min: 1, max: 1,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(ctx context.Context, a *app, args []string) error {
			v, err := a.openVault(ctx)
			if err != nil {
				return err
			}
			defer v.Close()
			s, sum, err := loadSession(ctx, v, args[0])
			if err != nil {
				return a.sessionErr(args[0], err)
			}
			defer s.Destroy()
			rep := report(args[0], s, time.Now(), sum)
			red, err := json.MarshalIndent(redact(s), "", "  ")
			if err != nil {
				return err
			}
			return a.emit(map[string]any{
				"name":    args[0],
				"status":  rep,
				"session": json.RawMessage(red),
			}, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n%s\n", red, rep.Summary)
			})
		}
	},
}

// loadSession reads one session through a session.Manager without
// auto-save (nothing is written) and returns a copy that the caller
// destroys, with the Manager's summary line.
func loadSession(ctx context.Context, v *vault.Vault, name string) (*session.AuthSession, string, error) {
	m, err := session.NewManager(ctx, v.Store(name), session.WithAutoSave(false))
	if err != nil {
		return nil, "", err
	}
	defer m.Close(ctx)
	s, err := m.Snapshot()
	if err != nil {
		return nil, "", fmt.Errorf("session %q: %w", name, session.ErrNoSession)
	}
	return s, m.Summary(), nil
}

// pickWorse keeps the error with the more specific exit code, so that a
// run over many sessions exits with the most telling one.
func pickWorse(cur, next error) error {
	if cur == nil {
		return next
	}
	rank := func(err error) int {
		switch exitCode(err) {
		case exitPermission:
			return 5
		case exitCorrupt:
			return 4
		case exitWrongKey:
			return 3
		case exitKeychain:
			return 2
		case exitNotFound:
			return 0
		}
		return 1
	}
	if rank(next) > rank(cur) {
		return next
	}
	return cur
}
