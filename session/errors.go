package session

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error categories; match them with errors.Is. The names of the first four
// are the seed's AuthError variants that apply to a session manager (the
// others belong to its login client).
var (
	// ErrNotAuthenticated: there is no session in memory (the seed's
	// NotAuthenticated), or the registry has no session by that id.
	ErrNotAuthenticated = errors.New("session: not authenticated")
	// ErrTokenExpired: the tokens are past their expiry (less its
	// five-minute buffer) and could not be refreshed.
	ErrTokenExpired = errors.New("session: token expired")
	// ErrTokenNotFound: the session has no (or an empty) token where one
	// is needed, such as a refresh without a refresh token.
	ErrTokenNotFound = errors.New("session: token not found")
	// ErrUnauthorized: the server rejected the credentials. A RefreshFunc
	// returns an error wrapping it when the refresh token itself was
	// refused (an OAuth invalid_grant), so that the Manager stops using it.
	ErrUnauthorized = errors.New("session: unauthorized")

	// ErrReauthRequired: the auth server refused the refresh token (the
	// RefreshFunc reported ErrUnauthorized: an OAuth invalid_grant, a 401
	// from the refresh endpoint). No retry can help: the user must log in
	// again and start a new session (CreateSession). Refresh,
	// RefreshIfNeeded, a Transport's RoundTrip (through the *url.Error of
	// net/http) and a TokenSource return errors matching it.
	ErrReauthRequired = errors.New("session: re-authentication required")

	// ErrNoSession: the store holds no session under the name.
	ErrNoSession = errors.New("session: no stored session")
	// ErrInvalidSession: bytes are not a session in the axiomtrade-rs JSON
	// shape (a *DecodeError says where), or a session cannot be encoded.
	ErrInvalidSession = errors.New("session: invalid session data")
	// ErrInsecureURL: credentials would be sent over a connection that is
	// neither https/wss nor (when allowed) to a loopback address.
	ErrInsecureURL = errors.New("session: refusing to send credentials over an insecure connection")
	// ErrNotSaved: an update is in effect in memory but the store did not
	// take it; the next write retries it. The error also wraps the store's
	// error.
	ErrNotSaved = errors.New("session: update not saved")
	// ErrNoRefresher: a refresh was needed but no RefreshFunc was given
	// (WithRefresher).
	ErrNoRefresher = errors.New("session: no refresh function configured")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("session: manager closed")
	// ErrSessionExists: a Registry already has a session by that id.
	ErrSessionExists = errors.New("session: session id already registered")
	// ErrTooLarge: a session, or an update of one, is past a bound of the
	// stored form (limits.go): more cookies or API keys, a longer string
	// or more bytes of JSON than ParseSession accepts. The writer refuses
	// it before anything is stored or changed in memory, so that nothing
	// is ever saved that cannot be loaded again. A *LimitError says which
	// bound.
	ErrTooLarge = errors.New("session: session too large")
)

// StoreError reports a failed store operation on a named session. It
// wraps the store's error, so errors.Is(err, backends.ErrConflict) or a
// vault's wrong-key error still match.
//
// A zero StoreError is not a meaningful error: the package makes them.
type StoreError struct {
	Op   string // "open", "seal", "delete", "lock"
	Name string // the session name
	Kind error  // a category of this package (ErrNoSession), or nil
	Err  error
}

func (e *StoreError) Error() string {
	msg := "session: " + e.Op + " " + strconv.Quote(e.Name) + ": "
	if e.Kind != nil {
		msg += strings.TrimPrefix(e.Kind.Error(), "session: ") + ": "
	}
	return msg + e.Err.Error()
}

func (e *StoreError) Unwrap() []error {
	if e.Kind != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Err}
}

// NotSavedError reports an update that took effect in memory (the new
// tokens are usable) but could not be written. It matches ErrNotSaved and
// the underlying error.
//
// A zero NotSavedError is not a meaningful error: the package makes them.
type NotSavedError struct {
	Op  string // the update: "update tokens", "refresh", ...
	Err error
}

func (e *NotSavedError) Error() string {
	return "session: " + e.Op + ": in effect in memory but not saved: " + e.Err.Error()
}

func (e *NotSavedError) Unwrap() []error { return []error{ErrNotSaved, e.Err} }

// DecodeError reports where session JSON is malformed, or (Offset -1) a
// value MarshalPlaintext cannot write in a form ParseSession reads. It
// never quotes the input, not even a key: the bytes around an error, or
// where a name belongs in a broken file, may be a token.
//
// A zero DecodeError is not a meaningful error: the package makes them.
type DecodeError struct {
	Offset int    // byte offset in the input; -1 when encoding
	Field  string // the JSON path being read or written, such as "tokens.expires_at"
	Reason string
}

func (e *DecodeError) Error() string {
	msg := "session: invalid session data at byte " + strconv.Itoa(e.Offset)
	if e.Offset < 0 {
		msg = "session: cannot encode session"
	}
	if e.Field != "" {
		msg += " (" + e.Field + ")"
	}
	return msg + ": " + e.Reason
}

func (e *DecodeError) Unwrap() error { return ErrInvalidSession }

// LimitError reports a session, or an update of one, past a bound of the
// stored form (see ErrTooLarge, which it matches): it was refused before
// anything was stored or changed in memory. It names the field by its
// JSON path and gives sizes only, never a cookie name or a value.
//
// A zero LimitError is not a meaningful error: the package makes them.
type LimitError struct {
	Field string // JSON path, such as "cookies.additional_cookies"; "" for the whole session
	Unit  string // what Size and Limit count: "cookies", "api keys", "bytes"
	Size  int    // how many the session would have
	Limit int    // the most ParseSession accepts
}

func (e *LimitError) Error() string {
	what := "session"
	if e.Field != "" {
		what = e.Field
	}
	return "session: too large: " + what + " would have " + strconv.Itoa(e.Size) + " " + e.Unit +
		", more than the limit of " + strconv.Itoa(e.Limit)
}

func (e *LimitError) Unwrap() error { return ErrTooLarge }

// UnknownSessionError is returned by a Registry for an id it does not
// hold. It matches ErrNotAuthenticated, as the seed's switch_session does.
//
// A zero UnknownSessionError is not a meaningful error: the package makes
// them.
type UnknownSessionError struct{ ID string }

func (e *UnknownSessionError) Error() string {
	return fmt.Sprintf("session: no session %q in the registry", e.ID)
}

func (e *UnknownSessionError) Unwrap() error { return ErrNotAuthenticated }

// URLError reports a URL to which credentials are not sent. The URL is
// given without query or user information (either may hold a secret).
//
// A zero URLError is not a meaningful error: the package makes them.
type URLError struct {
	URL    string
	Reason string
}

func (e *URLError) Error() string {
	return "session: refusing to send credentials to " + e.URL + ": " + e.Reason
}

func (e *URLError) Unwrap() error { return ErrInsecureURL }
