// Package session keeps the authentication session of a trading bot or
// desktop app (JWT access and refresh tokens, auth cookies, a Turnkey
// wallet session, user information and usage metadata), in memory and
// sealed in a vault. It is a Go port of the session manager of the Rust
// client library axiomtrade-rs, with its security holes fixed.
//
// "The seed", in this package's documentation, is that Rust session
// manager: the code this package ports. Names in snake_case
// (mark_api_call, is_session_valid, ...) are its methods, given so that
// users of axiomtrade-rs find their counterparts. Using this package needs
// neither the Rust library nor its documentation.
//
// # Overview
//
// A Manager holds one session and persists it through a Store, which
// (*vault.Vault).Store returns: every byte at rest is sealed, every write
// is atomic. NewManager loads the stored session; CreateSession,
// UpdateTokens, UpdateCookies, UpdateTurnkeySession change it; MarkAPICall
// records usage; ClearSession and Logout end it; Close flushes and wipes
// (and closes the vault and backend handed to it with WithOwned).
// A Registry holds several named sessions and which one is active. A
// Transport (an http.RoundTripper) and WebSocketHeader attach the session
// to requests.
//
// # Session semantics (as in the seed)
//
//   - Tokens count as expired five minutes before expires_at and need a
//     refresh fifteen minutes before; tokens without expires_at never do.
//     For tokens that live less than an hour both windows shrink with the
//     lifetime (a quarter and a tenth of it: see DefaultBuffers), so that
//     a fresh five-minute token is not expired on arrival; WithExpiryBuffer
//     and WithRefreshBuffer set fixed windows.
//   - A Turnkey session needs a refresh one hour before its expiry.
//   - A session is valid when its tokens are not expired and both auth
//     cookies (auth-access-token, auth-refresh-token) are present
//     (WithRequiredCookies changes which).
//   - UpdateTokens sets last_refreshed_at; MarkAPICall sets
//     last_api_call_at and, if given, current_api_server.
//   - Summary prints the seed's line, e.g. "Session: VALID | Tokens: VALID
//     | Cookies: PRESENT | Turnkey: ACTIVE | Age: 45m | Last API: 2m ago".
//   - The JSON inside the seal is the file axiomtrade-rs writes
//     (serde_json's pretty form, byte for byte), so its files can be
//     imported (ParseSession, which also takes its tokens-only files) and
//     exported (AuthSession.MarshalPlaintext).
//
// # Fixes to the seed
//
// The seed's behaviour is kept where it is sound. These are the places
// where it was a bug or a hole, and what this package does instead:
//
//   - Cookie values containing '=' were dropped (parse_from_headers split
//     "name=value" on every '=' and kept only two-part results, losing
//     base64-padded and JWT-like cookies). ParseSetCookies uses net/http's
//     parser and keeps the value whole.
//   - g_state was reset on every cookie merge: parse_from_headers started
//     from AuthCookies::default(), whose g_state is {"i_l":0}, so every
//     merge overwrote the session's g_state. ParseSetCookies sets g_state
//     only when a g_state cookie is present.
//   - A Turnkey user id shorter than eight bytes (or with a multi-byte
//     character across the eighth byte) panicked when the username
//     "user_" + user_id[..8] was derived. The username takes the first
//     eight characters, or the whole id if shorter.
//   - Cookies the server expires (Max-Age <= 0, Expires in the past) were
//     stored as new values; they are now removed on merge.
//   - A stored session that could not be read was silently replaced by a
//     fresh start (SessionManager::new used .ok()), which the next save
//     overwrote. NewManager returns a typed error instead.
//   - The session was written as plaintext JSON, world-readable and not
//     atomically (fs::write); secrets printed in Debug output; logout did
//     not wipe. Here the Store seals (vault), secrets are Secret values
//     that redact themselves and are wiped on ClearSession, Close and
//     Destroy, and Logout revokes the refresh token before clearing.
//   - clear_session deleted the stored file only with auto-save, leaving
//     a live credential at rest otherwise. ClearSession always deletes.
//   - Two processes on one session file lost each other's updates (last
//     write wins) and could both refresh with the same rotating refresh
//     token. Writes here are locked, versioned and re-applied on
//     conflict, and refreshes are single-flight in the process and locked
//     across processes.
//   - The seed's WebSocket example put the access token in the URL query.
//     WebSocketHeader sends it in headers instead (see there for why).
//   - needs_refresh also looked at the Turnkey session, which a token
//     refresh does not renew, so "if needs_refresh { refresh }" rotated
//     the tokens on every turn while the Turnkey session was near expiry.
//     Manager.NeedsRefresh looks at the tokens only (TurnkeyNeedsRefresh
//     at the Turnkey session).
//   - serde ignores unknown fields, so a newer axiomtrade-rs's file has
//     members an older reader must skip. The decoder keeps them (bounded)
//     and the encoder writes them back, so such a file round-trips.
//
// # Persistence
//
// With auto-save (the default), CreateSession, UpdateTokens,
// UpdateCookies and UpdateTurnkeySession are durable when they return; an
// error matching ErrNotSaved means the change is in effect in memory but
// not stored, and the next write carries it. MarkAPICall does no I/O: a
// background goroutine writes metadata behind, at most once per
// WithMetadataFlushInterval, and Close flushes it.
//
// Every write is a compare-and-set on the stored version the Manager last
// saw, which the store checks under its own write lock. When another
// writer (another Manager, another process) stored a newer one, the
// Manager takes the store's lock (a flock on the file backend, a lease on
// Redis), re-reads, re-applies its own changes (tokens and the Turnkey
// session replace, unless the stored tokens were refreshed later; cookies
// merge; last_api_call_at keeps the later) and writes again with the
// version check, under the lock, for as long as the stored version moves:
// a durable update fails only when the storage does. A write that meets no
// conflict takes no lock. A session deleted by
// another writer (a logout elsewhere) is not resurrected: the update
// fails with ErrNoSession and the Manager wipes its copy.
//
// # Bounds
//
// The reader (ParseSession, and so every load) and the writer share one
// set of bounds (at most 4096 additional cookies, 256 Turnkey API keys,
// 64 KiB per string, 1 MiB of JSON in all), and the writer refuses,
// before anything is stored or changed in memory, every session the
// reader would refuse: an update past a bound fails with a *LimitError
// (ErrTooLarge). A session the Manager saved always loads again.
//
// # Refreshing
//
// Refresh and RefreshIfNeeded run one refresh per session at a time:
// singleflight in the process, the store's lock across processes, and a
// re-read under the lock that uses tokens another process already
// refreshed. A Transport (and a TokenSource) refreshes ahead: tokens due
// for a refresh but not expired are sent while one refresh runs in the
// background, so no request waits for it; only expired tokens wait.
// Failed refreshes back off exponentially with jitter (one second to five
// minutes) and are reported once per attempt. A refresh token the server
// refuses gives ErrReauthRequired. OAuth2Refresher refreshes through an
// OAuth 2 token endpoint, and Manager.TokenSource plugs the session into
// golang.org/x/oauth2. See Refresh for the details.
//
// # Secrets in memory
//
// Secret values live in byte buffers, never in Go strings, on every path
// between the vault and the Manager: the JSON decoder unescapes each
// secret straight into a buffer of its exact size, the encoder writes
// into a buffer it wipes when it grows, and the plaintext is wiped after
// every seal and open. Secrets leave the Manager lent to a callback
// (WithAccessToken) or as deep copies the caller destroys (Snapshot).
// The exceptions are the values net/http and WebSocket dialers need as
// strings (the Authorization and Cookie headers, and the URL of
// WebSocketURLWithToken): the Manager builds each once per credential
// change and reuses it, and SECURITY.md says they cannot be wiped. A
// test scans the process's own memory after cleanup for a token that went
// through each path (create, load, update) and finds no copy.
package session
