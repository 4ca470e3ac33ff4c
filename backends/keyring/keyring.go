// Package keyring adapts github.com/99designs/keyring to sessionvault: a
// backends.KeyStore for key-encryption keys, and backends.Backends for
// small blobs such as the vault header, over exactly one of its backends,
// chosen by the caller: the Secret Service, the kernel keyring (keyctl),
// pass, KWallet, the Windows Credential Manager, the macOS keychain
// (darwin with cgo only) or its passphrase-encrypted file store.
//
// Use it for a keychain that package backends/keychain (the machine's own
// keychain, through github.com/zalando/go-keyring) does not reach, above
// all the kernel keyring, or to pin one backend by name. Both packages are
// built on package backends/secretstore, so their errors, deadlines and entry
// framing are the same.
//
// Open never falls back: Config.AllowedBackends must name exactly one
// backend, and if that one cannot be opened, Open fails with an error
// matching backends.ErrUnavailable. 99designs/keyring would otherwise try
// the next backend in its list, and a key meant for the desktop keychain
// could silently land in a file.
//
// # Importing this package connects to D-Bus
//
// 99designs/keyring connects to the D-Bus session bus in an init function,
// to decide whether to offer its Secret Service backend. Importing this
// package therefore does that too, in every program that links it. That is
// why it is a package of its own: nothing else in sessionvault imports it,
// and programs that keep their keys elsewhere (package keychain, or a
// passphrase) never make that connection. A consequence: the Secret
// Service backend is only offered if the session bus was reachable when
// the program started.
//
// # Deadlines, errors, limits
//
// Calls run with a deadline (the caller's context, or DefaultTimeout) and
// fail with a *secretstore.TimeoutError when nothing answers; a missing
// service matches backends.ErrUnavailable, a locked collection
// backends.ErrLocked, and a value too large for the backend is refused
// with backends.ErrTooLarge before any call. See package secretstore for
// the entry framing, the versions and what compare-and-set guarantees.
//
// Calls to one Keyring are serialized, except on keyctl: 99designs'
// Secret Service and KWallet backends are not safe for concurrent use, and
// its file and pass backends rewrite files in place, so a concurrent read
// could see half a write.
//
// # Backends
//
//   - keyctl: entries live in the kernel keyring named Config.ServiceName
//     inside the scope Config.KeyCtlScope ("user", "session", ...), which
//     must be set. Kernel keys do not survive a reboot, and "user" keys are
//     dropped when the user's last process ends: use keyctl for a cache,
//     never as the only slot of a vault. 99designs/keyring leaves the
//     named keyring linked in its scope after the last key is removed.
//   - secret-service: entries are items of the collection
//     Config.LibSecretCollectionName (default: ServiceName), e.g. "login".
//     The value travels as JSON (99designs' Item) over the "plain" Secret
//     Service session. 99designs opens a new Secret Service session on
//     every call and never closes it: the daemon keeps one more session
//     object per call until the program exits (measured: 100 GetKey
//     calls, 100 more sessions in gnome-keyring). For a long-running
//     program, package keychain (go-keyring closes its sessions) is the
//     better way to the Secret Service.
//   - file: 99designs' jose-encrypted files (PBES2-HS256+A128KW with 8192
//     PBKDF2 iterations, written in place, not atomically). The vault's
//     own passphrase slot (argon2id) and backends/file are stronger; this
//     backend is supported for interoperability. FileDir and
//     FilePasswordFunc must be set; the passphrase is kept as a Go string
//     for the life of the Keyring.
//   - pass, kwallet, wincred, keychain: as 99designs/keyring documents.
//
// # Copies that cannot be wiped
//
// 99designs/keyring takes and returns []byte values, but some backends
// copy them: the Secret Service and KWallet backends marshal the item to
// JSON (the value base64-encoded inside), pass writes that JSON to gpg's
// stdin, the file backend encrypts it. Those copies are garbage the
// library does not wipe.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kr "github.com/99designs/keyring"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Config is 99designs/keyring's configuration. AllowedBackends must hold
// exactly one backend.
type Config = kr.Config

// BackendType names a 99designs/keyring backend.
type BackendType = kr.BackendType

// The backends Open accepts.
const (
	SecretServiceBackend = kr.SecretServiceBackend
	KeyCtlBackend        = kr.KeyCtlBackend
	PassBackend          = kr.PassBackend
	KWalletBackend       = kr.KWalletBackend
	WinCredBackend       = kr.WinCredBackend
	KeychainBackend      = kr.KeychainBackend
	FileBackend          = kr.FileBackend
)

// Keyring is a backends.KeyStore over one 99designs/keyring backend; its
// Backend method makes backends.Backends for small blobs in it. It is safe
// for concurrent use.
//
// The zero value is not usable: call Open.
type Keyring struct {
	ks      *secretstore.Keychain
	backend BackendType
}

var _ backends.KeyStore = (*Keyring)(nil)

// GetKey returns the key stored for account ("<vault id>/<key id>"), in a
// new slice that the caller wipes. A missing entry is an error matching
// backends.ErrNotFound; an entry sessionvault did not write matches
// secretstore.ErrMalformed. Some backends keep copies of their own: see the package
// documentation.
func (k *Keyring) GetKey(ctx context.Context, account string) ([]byte, error) {
	return k.ks.GetKey(ctx, account)
}

// PutKey stores key (1 to secretstore.MaxKeyLen bytes) for account,
// replacing any previous key. key is copied before PutKey returns; the
// caller keeps it and wipes it.
func (k *Keyring) PutKey(ctx context.Context, account string, key []byte) error {
	return k.ks.PutKey(ctx, account, key)
}

// DeleteKey removes the key stored for account; a missing entry is an
// error matching backends.ErrNotFound.
func (k *Keyring) DeleteKey(ctx context.Context, account string) error {
	return k.ks.DeleteKey(ctx, account)
}

// Probe checks that the keychain answers, by looking up an entry that
// does not exist. It returns nil if the keychain answered; otherwise an
// error matching backends.ErrUnavailable (no keychain, or no answer
// before the deadline) or backends.ErrLocked. A vault can then fall back
// to a passphrase slot before it asks the user anything.
func (k *Keyring) Probe(ctx context.Context) error { return k.ks.Probe(ctx) }

// Backend returns a backends.Backend whose small blobs (the vault header,
// a few small sealed sessions) live in the same keychain under namespace
// (1 to secretstore.MaxNamespaceLen bytes of A-Z a-z 0-9 - _ . @ +, not
// "." or ".."). It makes no keychain call. See secretstore.Backend for
// what its compare-and-set guarantees across processes.
func (k *Keyring) Backend(namespace string) (*secretstore.Backend, error) {
	return k.ks.Backend(namespace)
}

// BackendType returns the backend this Keyring uses.
func (k *Keyring) BackendType() BackendType { return k.backend }

// Option configures Open.
//
// A nil Option is ignored.
type Option func(*options)

type options struct {
	timeout time.Duration
	// open is kr.Open; tests put a ring that never answers here.
	open func(kr.Config) (kr.Keyring, error)
}

// WithTimeout bounds Open and each call whose context has no earlier
// deadline (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Open opens the one backend cfg.AllowedBackends names. It fails with an
// error matching backends.ErrUnavailable if that backend is not built
// into this program, not usable here, or does not answer before ctx's
// deadline; it never tries another backend.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Keyring, error) {
	o := options{timeout: DefaultTimeout, open: kr.Open}
	for _, f := range opts {
		if f != nil { // a nil Option is ignored
			f(&o)
		}
	}
	return open(ctx, cfg, o)
}

func open(ctx context.Context, cfg Config, o options) (*Keyring, error) {
	if len(cfg.AllowedBackends) != 1 {
		return nil, openError("", fmt.Errorf("%w: Config.AllowedBackends must name exactly one backend, not %d (no silent fallback)",
			ErrInvalidConfig, len(cfg.AllowedBackends)))
	}
	b := cfg.AllowedBackends[0]
	cfg.AllowedBackends = []BackendType{b} // our own copy
	if err := checkConfig(b, cfg); err != nil {
		return nil, openError(b, err)
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	ring, err := openWithDeadline(ctx, o, cfg)
	if err != nil {
		return nil, openError(b, err)
	}
	s := &store{ring: ring, backend: b}
	return &Keyring{
		ks: secretstore.New(s, secretstore.Options{
			Name:    "keyring/" + string(b),
			Timeout: o.timeout,
			// Only the keyctl backend is safe for concurrent use: the
			// Secret Service and KWallet backends reopen their session on
			// every call, in shared fields (a data race); the file and
			// pass backends rewrite files in place (torn reads).
			Serial: b != KeyCtlBackend,
		}),
		backend: b,
	}, nil
}

// ErrInvalidConfig is the cause of a Config that Open refuses: not exactly
// one backend, an unknown backend, keyctl without a scope, the file
// backend without a folder or a passphrase function.
var ErrInvalidConfig = errors.New("keyring: invalid configuration")

func openError(b BackendType, err error) error {
	kind := backends.ErrUnavailable
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrInvalidConfig) {
		kind = nil
	}
	return &backends.OpError{Backend: "keyring/" + string(b), Op: "open", Kind: kind, Err: err}
}

// checkConfig refuses configurations that 99designs/keyring would accept
// and then misuse or fail on later.
func checkConfig(b BackendType, cfg Config) error {
	switch b {
	case KeyCtlBackend:
		if !slices.Contains([]string{"user", "usersession", "session", "process", "thread"}, cfg.KeyCtlScope) {
			return fmt.Errorf("%w: keyctl needs KeyCtlScope \"user\", \"usersession\", \"session\", \"process\" or \"thread\", not %q",
				ErrInvalidConfig, cfg.KeyCtlScope)
		}
	case FileBackend:
		if cfg.FileDir == "" || cfg.FilePasswordFunc == nil {
			return fmt.Errorf("%w: the file backend needs FileDir and FilePasswordFunc", ErrInvalidConfig)
		}
	case SecretServiceBackend, PassBackend, KWalletBackend, WinCredBackend, KeychainBackend:
	default:
		return fmt.Errorf("%w: unknown backend %q", ErrInvalidConfig, b)
	}
	return nil
}

// openWithDeadline runs 99designs' Open (the Secret Service backend makes
// D-Bus calls there) with the deadline of every other call.
func openWithDeadline(ctx context.Context, o options, cfg Config) (kr.Keyring, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	type result struct {
		ring kr.Keyring
		err  error
	}
	done := make(chan result, 1) // buffered: an abandoned Open still finishes
	go func() {
		ring, err := o.open(cfg)
		done <- result{ring, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, kr.ErrNoAvailImpl) {
			return nil, fmt.Errorf("%s: %w", unavailableReason(cfg.AllowedBackends[0]), r.err)
		}
		if r.err != nil {
			return nil, classify(r.err)
		}
		return r.ring, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, &secretstore.TimeoutError{Waited: time.Since(start)}
	}
}

// unavailableReason explains ErrNoAvailImpl, which 99designs returns both
// for a backend that is not built in and for one whose opener failed.
func unavailableReason(b BackendType) string {
	switch b {
	case SecretServiceBackend:
		return "secret-service is not available: no D-Bus session bus when the program started (99designs/keyring checks at init), or not Linux"
	case KeyCtlBackend:
		return "keyctl is not available: not Linux, or the kernel keyring scope could not be opened (keyctl blocked in a container?)"
	case KeychainBackend:
		return "keychain is not available: only on macOS, in programs built with cgo"
	case WinCredBackend:
		return "wincred is not available: only on Windows"
	case KWalletBackend:
		return "kwallet is not available: no KWallet on the D-Bus session bus, or not Linux"
	case PassBackend:
		return "pass is not available: the pass command or its store directory is missing"
	}
	return string(b) + " is not available"
}

// store is the secretstore.Store over one 99designs/keyring backend.
type store struct {
	ring    kr.Keyring
	backend BackendType
}

func (s *store) MaxValueLen(string) int { return maxValueLen(s.backend) }

func (s *store) Get(account string) ([]byte, error) {
	it, err := s.ring.Get(account)
	if err != nil {
		secmem.Wipe(it.Data)
		return nil, classify(err)
	}
	if it.Data == nil {
		it.Data = []byte{}
	}
	return it.Data, nil
}

func (s *store) Set(account string, value []byte) error {
	err := s.ring.Set(kr.Item{
		Key:         account,
		Data:        value,
		Label:       "sessionvault " + account,
		Description: "sessionvault",
		// A key-encryption key stays on this machine: never synchronized
		// to iCloud (macOS keychain).
		KeychainNotSynchronizable: true,
	})
	if err != nil {
		return classify(err)
	}
	return nil
}

// Delete removes account's entry. Some backends (the Secret Service, the
// file store) report nothing or an unrelated error for a missing entry, so
// it looks the entry up first.
func (s *store) Delete(account string) error {
	it, err := s.ring.Get(account)
	secmem.Wipe(it.Data)
	if err != nil {
		return classify(err)
	}
	if err := s.ring.Remove(account); err != nil {
		return classify(err)
	}
	return nil
}
