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
	// backends.Any replace or remove such a key.
	ErrCorrupt = errors.New("redis: stored value is not a sessionvault blob")

	// ErrLeaseLost means that a Lease is no longer held by its owner: it
	// expired (and may have been taken by another process) or was
	// removed. Unlock and Extend return it; Put's version check still
	// fences any write the former holder attempts.
	ErrLeaseLost = errors.New("redis: lease lost")

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

// kindOf returns the category of a go-redis error.
func kindOf(err error) error {
	switch {
	case errors.Is(err, errClosed):
		return backends.ErrUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil // the cause says it all
	case goredis.IsAuthError(err), goredis.IsPermissionError(err):
		return backends.ErrPermission
	case goredis.HasErrorPrefix(err, "WRONGTYPE"):
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
