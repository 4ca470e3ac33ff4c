package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/vault"
)

// toRedisURLEnv is the destination Redis URL when --to-redis-url is not
// given; unlike the flag, it may carry a password.
const toRedisURLEnv = "VAULTCTL_TO_REDIS_URL"

var cmdMigrate = &command{
	name:    "migrate",
	summary: "copy the vault to another backend (file or Redis), sealed",
	help: `Copies the vault (the source: --backend, --dir, --redis-url, --redis-prefix)
to another backend: --to-backend file with --to-dir DIR, or --to-backend redis
with --to-redis-prefix P and the URL from --to-redis-url (no password: it
would show in the process list) or $VAULTCTL_TO_REDIS_URL. The source is
unlocked (the usual passphrase, --keychain or --tpm) only to verify; what
is copied are the sealed bytes, as they are: no plaintext leaves this
process, and the destination opens with the same key sources.

Order: every session first, then the header, so the destination is not
a vault until the copy is complete. Killed at any moment, run the same
command again: sessions already copied are checked and kept, the rest
copied. It refuses a destination that holds another vault, or sessions
that are not this vault's. After copying it reads every session back from
the destination and opens it under the vault's keys, and compares the
header byte for byte. The source is left as it was: remove it yourself
once the bots use the destination. Stop the bots that write the vault
first: a session updated after migrate's last pass is not copied.
Previous generations kept for recovery are not copied.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		var m migrateFlags
		fs.StringVar(&m.backend, "to-backend", "", "destination storage: `file` or redis")
		fs.StringVar(&m.dir, "to-dir", "", "destination vault folder `DIR` (--to-backend file)")
		fs.StringVar(&m.redisURL, "to-redis-url", "", "destination Redis `URL`, without a password (default $VAULTCTL_TO_REDIS_URL, which may carry one)")
		fs.StringVar(&m.redisPrefix, "to-redis-prefix", "", "destination Redis key `PREFIX` (default sessionvault)")
		return func(ctx context.Context, a *app, _ []string) error {
			return a.migrate(ctx, &m)
		}
	},
}

type migrateFlags struct {
	backend, dir, redisURL, redisPrefix string
}

// where describes the destination for messages (never the Redis URL).
func (m *migrateFlags) where() string {
	if m.backend == "redis" {
		p := m.redisPrefix
		if p == "" {
			p = redis.DefaultPrefix
		}
		return "redis prefix " + p
	}
	return m.dir
}

// check validates the destination flags.
func (m *migrateFlags) check(a *app) error {
	switch m.backend {
	case "file":
		if m.dir == "" {
			return usagef("migrate --to-backend file needs --to-dir DIR")
		}
		if m.redisURL != "" || m.redisPrefix != "" {
			return usagef("--to-redis-url and --to-redis-prefix are for --to-backend redis")
		}
		abs, err := filepath.Abs(m.dir)
		if err != nil {
			return err
		}
		m.dir = abs
	case "redis":
		if m.dir != "" {
			return usagef("--to-dir is for --to-backend file")
		}
		if u, err := url.Parse(m.redisURL); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return usagef("--to-redis-url carries a password, which other users can read in the process list: put the URL in $%s instead", toRedisURLEnv)
			}
		}
		if m.redisURL == "" {
			m.redisURL = a.getenv(toRedisURLEnv)
		}
		if m.redisURL == "" {
			return usagef("migrate --to-backend redis needs --to-redis-url URL or $%s", toRedisURLEnv)
		}
	case "":
		return usagef("migrate needs --to-backend file or redis: run 'vaultctl migrate --help'")
	default:
		return usagef("--to-backend %q: use file or redis", m.backend)
	}
	return nil
}

// open opens the destination backend (a file vault folder is created,
// private, with what leads to it).
func (m *migrateFlags) open(ctx context.Context) (backends.Backend, error) {
	if m.backend == "redis" {
		var opts []redis.Option
		if m.redisPrefix != "" {
			opts = append(opts, redis.WithPrefix(m.redisPrefix))
		}
		b, err := redis.NewFromURL(ctx, m.redisURL, opts...)
		if err != nil {
			return nil, &codedError{err: withHint(fmt.Errorf("destination: %w", err), "check --to-redis-url and that the server is up"), code: exitError}
		}
		return b, nil
	}
	if err := os.MkdirAll(filepath.Dir(m.dir), 0o700); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	b, err := file.New(m.dir)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return b, nil
}

// migrateResult is migrate's report.
type migrateResult struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Vault    string `json:"vault"`
	Sessions int    `json:"sessions"`
	Copied   int    `json:"copied"`
	Kept     int    `json:"already_there"`
	Verified int    `json:"verified"`
	Resumed  bool   `json:"resumed"`
}

func (a *app) migrate(ctx context.Context, m *migrateFlags) error {
	if err := m.check(a); err != nil {
		return err
	}
	src, err := a.openBackend(ctx, false)
	if err != nil {
		return err
	}
	if a.backend == "file" && m.backend == "file" && filepath.Clean(a.dir) == filepath.Clean(m.dir) {
		return usagef("migrate: --to-dir is the source folder")
	}
	v, err := a.unlock(ctx, src)
	if err != nil {
		return err
	}
	defer v.Close()
	dst, err := m.open(ctx)
	if err != nil {
		return err
	}
	a.backends = append(a.backends, dst)

	// Writers that create sessions or change the header take the
	// source's header lock: hold it, so that the header and the session
	// list stay what is copied.
	if l, ok := src.(backends.Locker); ok {
		lk, err := l.Lock(ctx, backends.HeaderName)
		if err != nil {
			return fmt.Errorf("migrate: lock the source header: %w", err)
		}
		defer lk.Unlock(context.WithoutCancel(ctx))
	}
	hdr, _, err := src.Get(ctx, backends.HeaderName)
	if err != nil {
		return a.explain(err)
	}
	res := migrateResult{From: a.where(), To: m.where(), Vault: v.ID()}

	// The destination: empty, or what an earlier run of this migration
	// left (this vault's sessions, and perhaps its header).
	dhdr, _, err := dst.Get(ctx, backends.HeaderName)
	switch {
	case err == nil:
		if !bytes.Equal(dhdr, hdr) {
			return withHint(fmt.Errorf("%w: the destination %s holds another vault, or this vault's header as it was before a change", vault.ErrExists, m.where()), "nothing was changed; migrate to an empty destination")
		}
		res.Resumed = true
	case errors.Is(err, backends.ErrNotFound):
	default:
		return fmt.Errorf("migrate: read the destination header: %w", err)
	}
	names, err := v.Sessions(ctx)
	if err != nil {
		return a.explain(err)
	}
	res.Sessions = len(names)
	dnames, err := dst.List(ctx)
	if err != nil {
		return fmt.Errorf("migrate: list the destination: %w", err)
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	for _, n := range dnames {
		if !want[n] {
			return withHint(fmt.Errorf("%w: the destination %s holds session %q, which this vault does not", vault.ErrExists, m.where(), n), "nothing was changed; migrate to an empty destination")
		}
	}
	// Leftovers of an earlier run must be this vault's own blobs: each
	// opens under its keys (the seal binds vault id and name). Checked
	// before anything is written.
	have := make(map[string]bool, len(dnames))
	for _, n := range dnames {
		have[n] = true
		blob, _, err := dst.Get(ctx, n)
		if err != nil {
			return fmt.Errorf("migrate: read %q at the destination: %w", n, err)
		}
		plain, err := v.OpenSession(ctx, n, blob)
		if err != nil {
			return withHint(fmt.Errorf("%w: the destination %s holds a session %q that is not this vault's: %w", vault.ErrExists, m.where(), n, err), "nothing was changed; migrate to an empty destination")
		}
		secmem.Wipe(plain)
	}

	p := a.newProgress("migrate", len(names))
	var (
		mu   sync.Mutex // guards res, done and p
		done int
	)
	err = forEach(ctx, names, func(name string) error {
		var r migrateResult
		if err := a.copySession(ctx, v, src, dst, name, have[name], &r); err != nil {
			return err
		}
		mu.Lock()
		res.Copied += r.Copied
		res.Kept += r.Kept
		done++
		p.update(done)
		mu.Unlock()
		return nil
	})
	p.finish()
	if err != nil {
		return err
	}

	// The header last: from now on the destination is a vault. Twice on
	// a backend that keeps previous generations, as Create does, so that
	// RecoverHeader has a spare there from the start.
	if !res.Resumed {
		ver, err := dst.Put(ctx, backends.HeaderName, hdr, backends.Absent)
		if err != nil {
			if errors.Is(err, backends.ErrConflict) {
				return fmt.Errorf("%w: another process wrote a vault header to %s meanwhile", vault.ErrExists, m.where())
			}
			return fmt.Errorf("migrate: write the destination header: %w", err)
		}
		if _, ok := dst.(backends.Recoverer); ok {
			_, _ = dst.Put(ctx, backends.HeaderName, hdr, ver)
		}
	}

	// Verify: the header byte for byte; every session read back from
	// the destination and opened under the vault's keys; and a last pass
	// over the source for sessions updated meanwhile (updates of an
	// existing session take no header lock).
	back, _, err := dst.Get(ctx, backends.HeaderName)
	if err != nil || !bytes.Equal(back, hdr) {
		return fmt.Errorf("migrate: the destination header does not read back as written: %v", err)
	}
	err = forEach(ctx, names, func(name string) error {
		if err := a.copySession(ctx, v, src, dst, name, true, nil); err != nil {
			return err
		}
		blob, _, err := dst.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("migrate: verify %q at the destination: %w", name, err)
		}
		plain, err := v.OpenSession(ctx, name, blob)
		if err != nil {
			return fmt.Errorf("migrate: session %q does not open at the destination: %w", name, err)
		}
		secmem.Wipe(plain)
		mu.Lock()
		res.Verified++
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	return a.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "migrated vault %s from %s to %s: %d sessions (%d copied, %d already there), every one opens at the destination\n",
			res.Vault, res.From, res.To, res.Sessions, res.Copied, res.Kept)
		fmt.Fprintf(w, "the source is unchanged: point the bots at %s, then remove the source\n", res.To)
	})
}

// copySession copies one sealed session from src to dst, unless dst
// holds the same bytes. present says dst may hold it already (a rerun, or
// the verify pass): then what is there must open under v's keys, or the
// copy is refused. res, if not nil, counts what was done.
func (a *app) copySession(ctx context.Context, v *vault.Vault, src, dst backends.Backend, name string, present bool, res *migrateResult) error {
	blob, _, err := src.Get(ctx, name)
	if errors.Is(err, backends.ErrNotFound) {
		return fmt.Errorf("migrate: session %q vanished from the source while migrating: stop the writers and run migrate again", name)
	}
	if err != nil {
		return fmt.Errorf("migrate: read %q: %w", name, err)
	}
	// The source blob must open: a damaged session is repaired at the
	// source (verify --recover), not carried over. OpenSession opens in
	// place, so it gets a copy: blob itself is what is copied.
	plain, err := v.OpenSession(ctx, name, bytes.Clone(blob))
	if err != nil {
		return withHint(a.explain(err), "nothing of it was copied")
	}
	secmem.Wipe(plain)
	ifVer := backends.Absent
	if present {
		old, ver, err := dst.Get(ctx, name)
		switch {
		case err == nil:
			if bytes.Equal(old, blob) {
				if res != nil {
					res.Kept++
				}
				return nil
			}
			p, err := v.OpenSession(ctx, name, old)
			if err != nil {
				return withHint(fmt.Errorf("%w: the destination holds a session %q that is not this vault's: %w", vault.ErrExists, name, err), "nothing more was changed; migrate to an empty destination")
			}
			secmem.Wipe(p)
			ifVer = ver // an older copy of this vault's session
		case errors.Is(err, backends.ErrNotFound):
		default:
			return fmt.Errorf("migrate: read %q at the destination: %w", name, err)
		}
	}
	if _, err := dst.Put(ctx, name, blob, ifVer); err != nil {
		return fmt.Errorf("migrate: write %q to the destination: %w", name, err)
	}
	if res != nil {
		res.Copied++
	}
	return nil
}

// forEach runs fn for every name, migrateWorkers at a time, and returns
// the first error (the others stop taking names). Each fn call is one
// session's atomic writes, independent of the others; running a few at
// once overlaps their fsyncs (or Redis round trips), as RotateKey does.
func forEach(ctx context.Context, names []string, fn func(name string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(migrateWorkers)
	for _, name := range names {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(name) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
