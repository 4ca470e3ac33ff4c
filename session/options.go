package session

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Option configures a Manager.
//
// A nil Option is ignored.
type Option func(*config)

type config struct {
	autoSave      bool
	clock         func() time.Time
	flushInterval time.Duration
	logger        *slog.Logger
	refresher     RefreshFunc
	userAgent     string
	refreshWait   time.Duration
	win           windows  // expiry and refresh buffers
	required      []string // cookies a valid session carries
	owned         []io.Closer
}

func defaultConfig() config {
	return config{
		autoSave:      true,
		clock:         time.Now,
		flushInterval: DefaultMetadataFlushInterval,
		logger:        slog.New(slog.DiscardHandler),
		userAgent:     DefaultUserAgent,
		refreshWait:   DefaultRefreshTimeout,
		required:      defaultRequiredCookies,
	}
}

// RefreshFunc exchanges a refresh token for new tokens at the auth server.
// It may also return cookies the server set on the refresh response (nil
// if none). The Manager takes ownership of what it returns (and destroys
// it when replaced); refreshToken is valid only during the call and must
// not be kept.
//
// Return an error wrapping ErrUnauthorized when the server refused the
// refresh token itself (an OAuth invalid_grant, a 401 from the refresh
// endpoint): the Manager then stops using that session. Any other error
// is treated as transient.
//
// The function runs while the Manager holds its store lock: it must not
// call methods of the Manager, nor wait for another Manager's update of
// the same session (an update whose first attempt meets a conflict takes
// that lock, and so waits for the refresh). Requests it makes through a Transport of the same Manager
// are sent with the session's credentials but neither refresh nor merge
// cookies (return those instead).
type RefreshFunc func(ctx context.Context, refreshToken Secret) (AuthTokens, *AuthCookies, error)

// WithOwned hands closers to the Manager: its Close closes them, in the
// order given, after it has flushed and wiped the session, so one Close
// releases the whole stack:
//
//	m, err := session.NewManager(ctx, v.Store("trading"), session.WithOwned(v, backend))
//	if err != nil {
//		v.Close() // NewManager failed: v and backend are still the caller's
//		backend.Close()
//		return err
//	}
//	defer m.Close(ctx) // flushes, wipes, closes v (wiping its keys), then backend
//
// Ownership passes only when NewManager succeeds. Without WithOwned a
// Manager owns nothing but the session in memory: its Close leaves the
// Store, the vault and the backend open. Hand a vault or backend to one
// Manager only, and only if no other Manager uses it: a vault shared by
// several Managers (a Registry) is closed by the caller after them.
// Several WithOwned options add up.
func WithOwned(closers ...io.Closer) Option {
	return func(c *config) {
		for _, cl := range closers {
			if cl != nil {
				c.owned = append(c.owned, cl)
			}
		}
	}
}

// WithAutoSave sets whether every change is saved as it is made (the
// default, true). With auto-save, CreateSession, UpdateTokens,
// UpdateCookies and UpdateTurnkeySession are durable when they return,
// and MarkAPICall is written behind (see WithMetadataFlushInterval).
// Without it, changes stay in memory until Save; ClearSession and Refresh
// still write, since a stale credential at rest, or a lost rotated
// refresh token, is worse than an unexpected write.
func WithAutoSave(on bool) Option { return func(c *config) { c.autoSave = on } }

// WithClock sets the clock that validity, the summary and timestamps use
// (default time.Now). Write-behind scheduling uses real time.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.clock = now
		}
	}
}

// WithMetadataFlushInterval sets the least time between two write-behind
// metadata writes (default DefaultMetadataFlushInterval). MarkAPICall
// never writes itself; a background goroutine writes at most once per
// interval and on Close.
func WithMetadataFlushInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.flushInterval = d
		}
	}
}

// WithLogger sets where the Manager reports what it cannot return, such as
// a failed write-behind (default: nowhere). It never logs a secret.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithRefresher sets the function that refreshes tokens (Refresh and the
// HTTP Transport use it).
func WithRefresher(f RefreshFunc) Option { return func(c *config) { c.refresher = f } }

// WithRefreshTimeout bounds one refresh, lock wait included (default
// DefaultRefreshTimeout). A refresh runs on behalf of every goroutine that
// asked for it, so it is not cut short when the first of them gives up.
func WithRefreshTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.refreshWait = d
		}
	}
}

// WithUserAgent sets the user agent of sessions this Manager creates
// (default DefaultUserAgent).
func WithUserAgent(ua string) Option {
	return func(c *config) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// WithExpiryBuffer makes tokens count as expired d before their
// expires_at, whatever their lifetime. The default scales with the
// lifetime: the seed's five minutes for tokens that live an hour or more,
// a tenth of the lifetime for shorter ones (see DefaultBuffers). A
// negative d panics.
func WithExpiryBuffer(d time.Duration) Option {
	if d < 0 {
		panic("session: negative expiry buffer")
	}
	return func(c *config) { c.win.expiry = &d }
}

// WithRefreshBuffer makes tokens due for a refresh d before their
// expires_at, whatever their lifetime. The default scales with the
// lifetime: the seed's fifteen minutes for tokens that live an hour or
// more, a quarter of the lifetime for shorter ones (see DefaultBuffers).
// Keep it larger than the expiry buffer: the time between the two is
// when a refresh runs in the background without delaying any request. A
// negative d panics.
func WithRefreshBuffer(d time.Duration) Option {
	if d < 0 {
		panic("session: negative refresh buffer")
	}
	return func(c *config) { c.win.refresh = &d }
}

// WithRequiredCookies sets the cookies a session must carry to be valid
// (IsSessionValid, HasValidCookies, the summary line and the WebSocket
// helpers). The default is the seed's two, CookieAuthAccessToken and
// CookieAuthRefreshToken. With no names, cookies are not required: a
// session with unexpired tokens is valid.
func WithRequiredCookies(names ...string) Option {
	names = slices.Clone(names)
	return func(c *config) { c.required = names }
}
