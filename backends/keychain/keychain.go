// Package keychain keeps sessionvault's key-encryption keys, and small
// blobs such as the vault header, in the operating system's keychain
// through github.com/zalando/go-keyring: the Secret Service (GNOME
// Keyring, KWallet's Secret Service bridge, KeePassXC) on Linux and the
// BSDs, the login keychain on macOS (through /usr/bin/security), the
// Credential Manager on Windows.
//
// This is the package to use for "the keychain" of the machine: no cgo, no
// configuration, no connection at import. Package backends/keyring is for
// a keychain this one does not reach (the kernel keyring, pass, KWallet,
// an encrypted file), named explicitly. Both are built on package
// backends/secretstore, so their errors, deadlines and framing are the same.
//
// Entries live under the service "sessionvault" (Service). A key lives
// under the account "<vault id>/<key id>"; the blobs of a Backend live
// under "blobs/NAMESPACE/NAME". Everything is framed and base64-encoded
// (see package secretstore for the framing); go-keyring stores strings.
//
// Every call has a deadline: the caller's context, or DefaultTimeout. A
// keychain that is missing (no D-Bus session bus, no Secret Service) fails
// fast with an error matching backends.ErrUnavailable; a locked collection
// with backends.ErrLocked; an unanswered prompt with a
// *secretstore.TimeoutError (matching backends.ErrUnavailable and
// context.DeadlineExceeded) at the deadline, without hanging the caller.
// On Linux, a program whose DBUS_SESSION_BUS_ADDRESS is unset (and that
// finds no $XDG_RUNTIME_DIR/bus) makes the D-Bus library run `dbus-launch
// --autolaunch`: without the dbus-x11 package that fails at once
// (ErrUnavailable); with it, it starts a session bus that outlives the
// program. Values longer than the platform holds are refused with
// backends.ErrTooLarge before any keychain call; Backend.MaxBlobLen tells
// the limit.
//
// # Copies that cannot be wiped
//
// go-keyring takes and returns Go strings, which cannot be wiped. Each
// PutKey leaves, until the garbage collector reuses the memory: the base64
// string we hand to go-keyring and the copies go-keyring and the D-Bus
// library make of it (a []byte for the message; on macOS, a second base64
// string and the command line written to security's stdin; on Windows the
// UTF-8 bytes of the credential). Each GetKey leaves the string go-keyring
// returns and the D-Bus reply it was made from. The key bytes themselves
// are decoded into, and returned in, slices that this package or the
// caller wipes. The Secret Service session is opened with the "plain"
// algorithm, as go-keyring does: the secret crosses the private D-Bus
// socket unencrypted, visible to the same user's processes, which can ask
// the Secret Service for it anyway.
package keychain

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"time"

	zk "github.com/zalando/go-keyring"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Service is the keychain service name of sessionvault's entries.
const Service = "sessionvault"

// Keychain is a backends.KeyStore in the OS keychain; its Backend method
// makes backends.Backends for small blobs in the same keychain. It is safe
// for concurrent use.
//
// The zero value is not usable: call New.
type Keychain struct {
	ks      *secretstore.Keychain
	service string
}

// Service returns the keychain service name the entries live under
// (Service, or the one given to WithService). It implements
// vault.ServiceNamer: a keychain slot a vault makes with this Keychain
// records the name (header version 3), so that a later Open, or
// vaultctl status, can find the key without being told the service.
func (k *Keychain) Service() string { return k.service }

var _ backends.KeyStore = (*Keychain)(nil)

// GetKey returns the key stored for account ("<vault id>/<key id>"), in a
// new slice that the caller wipes. A missing entry is an error matching
// backends.ErrNotFound; an entry sessionvault did not write matches
// secretstore.ErrMalformed. go-keyring's own copy of the entry (a Go string) cannot be wiped:
// see the package documentation.
func (k *Keychain) GetKey(ctx context.Context, account string) ([]byte, error) {
	return k.ks.GetKey(ctx, account)
}

// PutKey stores key (1 to secretstore.MaxKeyLen bytes) for account,
// replacing any previous key. key is copied before PutKey returns; the
// caller keeps it and wipes it.
func (k *Keychain) PutKey(ctx context.Context, account string, key []byte) error {
	return k.ks.PutKey(ctx, account, key)
}

// DeleteKey removes the key stored for account; a missing entry is an
// error matching backends.ErrNotFound.
func (k *Keychain) DeleteKey(ctx context.Context, account string) error {
	return k.ks.DeleteKey(ctx, account)
}

// Probe checks that the keychain answers, by looking up an entry that
// does not exist. It returns nil if the keychain answered; otherwise an
// error matching backends.ErrUnavailable (no keychain, or no answer
// before the deadline) or backends.ErrLocked. A vault can then fall back
// to a passphrase slot before it asks the user anything.
func (k *Keychain) Probe(ctx context.Context) error { return k.ks.Probe(ctx) }

// Backend returns a backends.Backend whose small blobs (the vault header,
// a few small sealed sessions) live in the same keychain under namespace
// (1 to secretstore.MaxNamespaceLen bytes of A-Z a-z 0-9 - _ . @ +, not
// "." or ".."). It makes no keychain call. See secretstore.Backend for
// what its compare-and-set guarantees across processes.
func (k *Keychain) Backend(namespace string) (*secretstore.Backend, error) {
	return k.ks.Backend(namespace)
}

// Option configures New.
//
// A nil Option is ignored.
type Option func(*config)

type config struct {
	service string
	timeout time.Duration
	p       provider
}

// WithTimeout bounds each call whose context has no earlier deadline
// (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithService stores entries under service instead of Service, e.g. to
// keep two installations apart: 1 to 64 bytes of A-Z a-z 0-9 - _ . @ +.
func WithService(service string) Option { return func(c *config) { c.service = service } }

// New returns a Keychain. It makes no keychain call: a missing keychain
// shows up on the first call (Probe tells in advance).
func New(opts ...Option) (*Keychain, error) {
	c := config{service: Service, timeout: DefaultTimeout, p: zalando{}}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(&c)
		}
	}
	return newKeychain(c)
}

func newKeychain(c config) (*Keychain, error) {
	if err := validateService(c.service); err != nil {
		return nil, err
	}
	s := &store{p: c.p, service: c.service, goos: runtime.GOOS}
	return &Keychain{ks: secretstore.New(s, secretstore.Options{Name: "keychain", Timeout: c.timeout}), service: c.service}, nil
}

func validateService(s string) error {
	if s == "" || len(s) > maxServiceLen {
		return fmt.Errorf("keychain: service name must be 1 to %d bytes", maxServiceLen)
	}
	if err := secretstore.ValidateAccount(s + "/x"); err != nil {
		return fmt.Errorf("keychain: service name %q: only A-Z a-z 0-9 - _ . @ + are allowed", s)
	}
	return nil
}

// provider is go-keyring's API; tests put a blocking fake here (the only
// fake: a prompt that never answers cannot be produced on demand).
type provider interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// zalando calls github.com/zalando/go-keyring.
type zalando struct{}

func (zalando) Get(service, user string) (string, error) { return zk.Get(service, user) }
func (zalando) Set(service, user, pw string) error       { return zk.Set(service, user, pw) }
func (zalando) Delete(service, user string) error        { return zk.Delete(service, user) }

// store is the secretstore.Store over go-keyring.
type store struct {
	p       provider
	service string
	goos    string
}

func (s *store) MaxValueLen(account string) int { return maxValueLen(s.goos, s.service, account) }

func (s *store) Get(account string) ([]byte, error) {
	str, err := s.p.Get(s.service, account)
	if err != nil {
		return nil, classify(err)
	}
	if len(str) > encodedLen(s.MaxValueLen(account)) {
		return nil, &secretstore.StoreError{Kind: secretstore.ErrMalformed,
			Msg: fmt.Sprintf("entry holds %d bytes, more than this keychain stores", len(str))}
	}
	src := []byte(str) // a copy we can wipe; str itself cannot be
	defer secmem.Wipe(src)
	v := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(v, src)
	if err != nil {
		secmem.Wipe(v)
		return nil, &secretstore.StoreError{Kind: secretstore.ErrMalformed, Msg: "entry is not base64"}
	}
	return v[:n], nil
}

func (s *store) Set(account string, value []byte) error {
	// The encoded string cannot be wiped (see the package documentation).
	if err := s.p.Set(s.service, account, base64.StdEncoding.EncodeToString(value)); err != nil {
		return classify(err)
	}
	return nil
}

func (s *store) Delete(account string) error {
	if err := s.p.Delete(s.service, account); err != nil {
		return classify(err)
	}
	return nil
}

// classify maps go-keyring's errors to backends categories.
func classify(err error) error {
	switch {
	case errors.Is(err, zk.ErrNotFound):
		return &secretstore.StoreError{Kind: backends.ErrNotFound, Err: err}
	case errors.Is(err, zk.ErrSetDataTooBig):
		return &secretstore.StoreError{Kind: backends.ErrTooLarge, Err: err}
	case errors.Is(err, zk.ErrUnsupportedPlatform):
		return &secretstore.StoreError{Kind: backends.ErrUnavailable, Msg: "no keychain support on " + runtime.GOOS, Err: err}
	}
	return classifyPlatform(err)
}
