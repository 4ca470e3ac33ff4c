package session

import (
	"context"
)

// LogoutError reports a logout whose revocation failed. The session was
// not cleared: retry Logout, or call ClearSession to drop it locally
// anyway (the refresh token then stays valid at the server until it
// expires).
//
// A zero LogoutError is not a meaningful error: the package makes them.
type LogoutError struct{ Err error }

func (e *LogoutError) Error() string {
	return "session: logout: revoking the refresh token failed; session kept: " + e.Err.Error()
}

func (e *LogoutError) Unwrap() error { return e.Err }

// Logout ends the session securely: it revokes the refresh token at the
// server through revoke, then clears the session (ClearSession: wipes
// memory, deletes the stored copy, which makes every other Manager of this
// session drop it at its next write). revoke gets a copy of the refresh
// token, wiped when it returns; it must not keep it. If revoke fails,
// nothing is cleared and the error is a *LogoutError.
func (m *Manager) Logout(ctx context.Context, revoke func(ctx context.Context, refreshToken Secret) error) error {
	if err := m.WithRefreshToken(func(rt Secret) error { return revoke(ctx, rt) }); err != nil {
		if err == ErrNotAuthenticated {
			return err
		}
		return &LogoutError{Err: err}
	}
	return m.ClearSession(ctx)
}
