// Package secretstore turns a keychain that can only get, set and delete
// one secret per account (the common ground of the Secret Service, the
// macOS keychain, the Windows Credential Manager and the kernel keyring)
// into a backends.KeyStore and a backends.Backend, with the properties the
// rest of sessionvault relies on:
//
//   - Deadlines. Keychain libraries take no context and may block forever on
//     a prompt nobody answers. Every call runs in its own goroutine and the
//     caller gets a *TimeoutError (matching backends.ErrUnavailable and
//     context.DeadlineExceeded) at its context's deadline, or after
//     DefaultTimeout. At most MaxInFlight calls per Keychain are ever
//     outstanding, so a hung keychain cannot pile up goroutines.
//   - Typed errors. Every error is a *backends.OpError whose Kind is a
//     backends sentinel: a missing entry is ErrNotFound, a locked
//     collection ErrLocked, a missing service ErrUnavailable, an oversized
//     value ErrTooLarge (refused before any keychain call).
//   - Framing. Every entry starts with a magic that says what it is; a
//     value under one of our accounts that we did not write is refused
//     with ErrMalformed rather than used as a key.
//   - Versions. Blobs carry a random 128-bit version, and Put is a
//     compare-and-set under a per-Keychain write lock. See Backend for
//     what that does and does not guarantee across processes.
//
// It is the layer shared by the module's two keychain packages:
// backends/keychain (the OS keychain, through
// github.com/zalando/go-keyring) and backends/keyring (one chosen backend
// of github.com/99designs/keyring: keyctl, pass, KWallet, ...). Both are
// built on a Keychain of this package, so their errors (*TimeoutError,
// ErrMalformed), deadlines and entry framing are the same. This package imports neither library and never opens a
// connection itself; a program needs it directly only to match those
// errors, or to put a keychain of its own behind a Store.
package secretstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Store is a keychain reduced to what every OS keychain offers: one secret
// value per account, under a service fixed by the Store. Its methods take
// no context and may block (an unlock prompt); the Keychain built over it
// calls them with a deadline, at most MaxInFlight at a time.
//
// A Store reports failures with errors matching backends.ErrNotFound (no
// entry), ErrLocked, ErrUnavailable, ErrTooLarge or ErrPermission, for
// example a *StoreError; an error matching none of them is taken as
// ErrUnavailable.
type Store interface {
	// Get returns the value stored for account, in a slice that belongs
	// to the caller (who wipes it).
	Get(account string) ([]byte, error)
	// Set stores value for account, replacing any previous value. It must
	// not keep value after it returns.
	Set(account string, value []byte) error
	// Delete removes the entry for account; a missing entry is an error
	// matching backends.ErrNotFound.
	Delete(account string) error
	// MaxValueLen returns the largest value Set accepts for account on
	// this platform. The Keychain refuses longer values with ErrTooLarge
	// before calling Set, and treats a longer value from Get as
	// malformed.
	MaxValueLen(account string) int
}

// StoreError is a failure of a Store, classified. Its message is Msg
// followed by the library's error; neither may contain secret bytes.
//
// A zero StoreError is not a meaningful error: Stores make them.
type StoreError struct {
	Kind error  // a backends sentinel: ErrNotFound, ErrLocked, ErrUnavailable, ...
	Msg  string // what it means for the user, e.g. "no Secret Service on the session bus"
	Err  error  // the library's error, or nil
}

// Error returns Msg and the cause.
func (e *StoreError) Error() string {
	switch {
	case e.Err == nil:
		return e.Msg
	case e.Msg == "":
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the category and the cause.
func (e *StoreError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// TimeoutError reports a keychain call that did not answer before the
// deadline: a prompt nobody answered, or a hung service. It matches
// backends.ErrUnavailable and context.DeadlineExceeded. The call itself may
// still complete later in the background; a write that timed out may
// therefore still land, but never after a later write through the same
// Keychain (writes are serialized until the stuck one returns).
//
// A zero TimeoutError reports a wait of 0s; the keychain packages make
// them.
type TimeoutError struct {
	Waited time.Duration // how long the caller waited
}

// Error says how long the caller waited.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no answer from the keychain after %v (an unanswered prompt or a hung service)",
		e.Waited.Round(time.Millisecond))
}

// Is reports whether target is backends.ErrUnavailable or
// context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == backends.ErrUnavailable || target == context.DeadlineExceeded
}

// Timeout reports true, like net.Error.
func (e *TimeoutError) Timeout() bool { return true }

// Options configure a Keychain.
//
// The zero value is usable: the name "keychain", DefaultTimeout, concurrent
// calls.
type Options struct {
	// Name names the keychain in errors: a *backends.OpError's Backend,
	// e.g. "keychain" or "keyring/keyctl".
	Name string
	// Timeout bounds each call when the caller's context has no earlier
	// deadline. Zero means DefaultTimeout.
	Timeout time.Duration
	// Serial is set for Stores that must not be called concurrently:
	// one that is not safe for concurrent use (99designs' Secret Service
	// backend rewrites its session and collection on every call), or
	// one whose writes are not atomic, so that a read during a write can
	// see half of it (99designs' file backend rewrites files in place).
	// Every call then waits for the one before it, as writes always do.
	// Readers in other processes can still see a torn entry; they get an
	// error, not wrong data, if the Store authenticates its entries.
	Serial bool
}

// Keychain is a backends.KeyStore over a Store, and makes Backends over the
// same Store (Backend). It is safe for concurrent use.
//
// The zero value is not usable: call New.
type Keychain struct {
	store   Store
	name    string
	timeout time.Duration
	serial  bool

	// slots bounds the calls in flight, abandoned ones included.
	slots chan struct{}
	// writeMu serializes every change (PutKey, DeleteKey, Put, Delete),
	// from the call's start until its goroutine returns, so that a write
	// whose caller timed out can never land after a later write, and a
	// compare-and-set reads and writes with no other writer of this
	// Keychain in between.
	writeMu chan struct{}
}

// New returns a Keychain over s. It makes no keychain call.
func New(s Store, o Options) *Keychain {
	if s == nil {
		panic("secretstore: nil Store")
	}
	if o.Name == "" {
		o.Name = "keychain"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Keychain{
		store:   s,
		name:    o.Name,
		timeout: o.Timeout,
		serial:  o.Serial,
		slots:   make(chan struct{}, MaxInFlight),
		writeMu: make(chan struct{}, 1),
	}
}

// opError builds the error of a failed call, classifying cause.
func (k *Keychain) opError(op, name, step string, cause error) error {
	var oe *backends.OpError
	if errors.As(cause, &oe) {
		return cause
	}
	return &backends.OpError{Backend: k.name, Op: op, Name: name, Step: step, Kind: kindOf(cause), Err: cause}
}

// kindOf returns the backends category of err.
func kindOf(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, backends.ErrNotFound):
		return backends.ErrNotFound
	case errors.Is(err, backends.ErrConflict):
		return backends.ErrConflict
	case errors.Is(err, backends.ErrLocked):
		return backends.ErrLocked
	case errors.Is(err, backends.ErrTooLarge):
		return backends.ErrTooLarge
	case errors.Is(err, backends.ErrPermission):
		return backends.ErrPermission
	case errors.Is(err, backends.ErrInvalidName):
		return backends.ErrInvalidName
	case errors.Is(err, ErrMalformed):
		return ErrMalformed
	}
	return backends.ErrUnavailable
}

// pending is the hand-over between a call's goroutine and its caller.
type pending struct {
	mu        sync.Mutex
	done      chan struct{} // closed when the result is in v and err
	abandoned bool          // the caller left; the goroutine wipes v
	v         []byte
	err       error
}

// call runs f in a goroutine of its own and waits for it until ctx ends or
// the Keychain's timeout passes, whichever is first. f gets a context that
// is done once the caller has left; it checks it between keychain calls so
// that an abandoned operation does not go on to write.
//
// A write call holds writeMu from before f starts until f returns, even if
// the caller left earlier. The secret f returns is handed to the caller,
// or wiped if the caller has left.
func (k *Keychain) call(ctx context.Context, op, name string, write bool, f func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, k.ctxError(op, name, err, 0)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()

	write = write || k.serial
	if write {
		select {
		case k.writeMu <- struct{}{}:
		case <-ctx.Done():
			return nil, k.ctxError(op, name, ctx.Err(), time.Since(start))
		}
	}
	select {
	case k.slots <- struct{}{}:
	case <-ctx.Done():
		if write {
			<-k.writeMu
		}
		return nil, k.ctxError(op, name, ctx.Err(), time.Since(start))
	}

	p := &pending{done: make(chan struct{})}
	go func() {
		defer func() {
			<-k.slots
			if write {
				<-k.writeMu
			}
		}()
		v, err := f(ctx)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.abandoned {
			wipe(v)
			return
		}
		p.v, p.err = v, err
		close(p.done)
	}()

	select {
	case <-p.done:
	case <-ctx.Done():
		p.mu.Lock()
		select {
		case <-p.done: // the answer came in at the deadline: use it
		default:
			p.abandoned = true
			p.mu.Unlock()
			return nil, k.ctxError(op, name, ctx.Err(), time.Since(start))
		}
		p.mu.Unlock()
	}
	if p.err != nil {
		return nil, k.opError(op, name, "", p.err)
	}
	return p.v, nil
}

// ctxError is the error of a call whose context ended: a *TimeoutError for
// a deadline (the caller's or the Keychain's), the context's error for a
// cancellation.
func (k *Keychain) ctxError(op, name string, err error, waited time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &backends.OpError{Backend: k.name, Op: op, Name: name, Kind: backends.ErrUnavailable, Err: &TimeoutError{Waited: waited}}
	}
	return &backends.OpError{Backend: k.name, Op: op, Name: name, Err: err}
}

// probeAccount is an account Probe looks up; no entry is ever stored there.
const probeAccount = "sessionvault-probe/absent"

// Probe checks that the keychain answers, by looking up an entry that does
// not exist. It returns nil if the keychain answered (with "not found");
// otherwise an error matching backends.ErrUnavailable (no keychain, no
// answer before the deadline) or backends.ErrLocked.
func (k *Keychain) Probe(ctx context.Context) error {
	_, err := k.call(ctx, "probe", "", false, func(context.Context) ([]byte, error) {
		v, err := k.store.Get(probeAccount)
		wipe(v)
		if errors.Is(err, backends.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	})
	return err
}
