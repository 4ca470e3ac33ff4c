package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
)

var (
	// ErrCorrupt means that a key under the backend's prefix holds
	// something that is not a blob of this backend: another Redis type, a
	// hash without the version or data field, a malformed version, or a
	// value over the size limit. It is never retried; Put and Delete with
	// backends.Any replace or remove such a key. It also means that the
	// server's reply is not one this package's commands produce: a reply
	// refused by LimitReplies (ErrBadReply), a panic of go-redis on a
	// forged reply (recovered), an unexpected shape.
	ErrCorrupt = errors.New("redis: stored value is not a sessionvault blob")

	// ErrLeaseLost means that a Lease is no longer held by its owner: it
	// expired (and may have been taken by another process) or was
	// removed. Unlock and Extend return it; Put's version check still
	// fences any write the former holder attempts.
	ErrLeaseLost = errors.New("redis: lease lost")

	// ErrNotReplicated means that a write under WithReplicaAck(n, timeout)
	// reached the master but fewer than n replicas acknowledged it within
	// the timeout. The write is applied on the master; whether it survives
	// a failover that happens now is unknown (it may or may not be on the
	// replica Sentinel promotes). Re-read before deciding what to do. Put
	// and Restore return the new version together with this error.
	ErrNotReplicated = errors.New("redis: write not acknowledged by enough replicas in time; it may or may not survive a failover")

	// ErrRollback means that the server returned, for a name, a version
	// older than one this Backend has already read or written for it: a
	// failover promoted a replica that lacked the newer write, or an older
	// copy of the data was loaded. The older blob is not returned. See
	// Backend.Forget.
	ErrRollback = errors.New("redis: stored version is older than one already seen")

	// errClosed is the cause given when a method is called after Close.
	errClosed = errors.New("redis: backend closed")
)

// backendName is the OpError.Backend of this package's errors.
const backendName = "redis"

func opErr(op, name string, kind, cause error) error {
	return &backends.OpError{Backend: backendName, Op: op, Name: name, Kind: kind, Err: cause}
}

// wrap classifies err, returned by go-redis for operation op, into a
// *backends.OpError of the right category. When ctx has ended the error
// matches ctx.Err(), whatever the transport reported; when its deadline
// passed during the call (the server did not answer in time: down,
// stopped, unreachable) it matches backends.ErrUnavailable too.
func wrap(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return opErr(op, name, backends.ErrUnavailable, fmt.Errorf("no answer before the deadline: %w", err))
		}
		return opErr(op, name, nil, err)
	}
	return opErr(op, name, kindOf(err), err)
}

// errPanic is the cause of an error made from a panic inside go-redis
// (see recoverPanic).
var errPanic = errors.New("redis: client panicked on a reply")

// recoverPanic turns a panic during op into an error matching ErrCorrupt,
// stored in *errp. go-redis panics on some forged replies (a bulk length
// beyond what make can allocate: "makeslice: len out of range"); a Backend
// whose client comes from New, without LimitReplies, meets them. The panic
// value is not put in the error: it may quote reply bytes. Every exported
// method that does I/O defers it.
func recoverPanic(op, name string, errp *error) {
	if r := recover(); r != nil {
		*errp = opErr(op, name, ErrCorrupt, errPanic)
	}
}

// kindOf returns the category of a go-redis error.
func kindOf(err error) error {
	switch {
	case errors.Is(err, errClosed):
		return backends.ErrUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil // the cause says it all
	case goredis.IsAuthError(err), goredis.IsPermissionError(err):
		return backends.ErrPermission
	case goredis.HasErrorPrefix(err, "WRONGTYPE"), errors.Is(err, ErrBadReply), errors.Is(err, errPanic):
		return ErrCorrupt
	case goredis.IsLoadingError(err), goredis.IsReadOnlyError(err),
		goredis.IsClusterDownError(err), goredis.IsTryAgainError(err),
		goredis.IsMasterDownError(err), goredis.IsMaxClientsError(err),
		goredis.IsOOMError(err), goredis.IsNoReplicasError(err),
		goredis.HasErrorPrefix(err, "BUSY"):
		return backends.ErrUnavailable
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		// Any other server reply is a bug or a misconfiguration (a
		// renamed command, a disabled scripting engine): not transient.
		return nil
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		// The server's identity did not verify: retrying will not help
		// and must not be mistaken for a transient outage.
		return nil
	}
	// Everything else comes from the transport: a refused or reset
	// connection, a timeout, EOF, a closed or exhausted pool, a protocol
	// error. The server cannot be used now; a later call may succeed.
	return backends.ErrUnavailable
}
