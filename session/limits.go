package session

import "time"

// Validity windows of the seed (axiomtrade-rs), kept exactly.
const (
	// ExpiryBuffer: tokens count as expired this long before their
	// expires_at, so that a request started now does not arrive with a
	// token that lapses in flight.
	ExpiryBuffer = 5 * time.Minute
	// RefreshBuffer: tokens need a refresh this long before expires_at,
	// leaving ten minutes between "should refresh" and "expired" for a
	// refresh to succeed, even after a retry.
	RefreshBuffer = 15 * time.Minute
	// TurnkeyRefreshBuffer: a Turnkey session needs a refresh this long
	// before its expires_at (the seed's one hour).
	TurnkeyRefreshBuffer = time.Hour
	// TurnkeyLifetime is the lifetime the seed gives a Turnkey session it
	// creates from login credentials.
	TurnkeyLifetime = 30 * 24 * time.Hour
)

// Scaling of the default validity windows with a token's lifetime L (see
// DefaultBuffers): a token is due for a refresh after 3/4 of L and expired
// after 9/10 of it. At L = 1 hour both equal the seed's buffers or more,
// so every token living an hour or longer keeps the seed's windows; a
// shorter one keeps 15% of its life between "due" and "expired" for a
// background refresh to succeed.
const (
	expiryBufferDivisor  = 10
	refreshBufferDivisor = 4
)

// Backoff of failed refreshes (a transport error, a 5xx, a timeout: any
// RefreshFunc error but ErrUnauthorized). After the n-th failure in a row
// no refresh is attempted for a delay drawn uniformly from [d/2, d), where
// d = refreshBackoffMin * 2^(n-1), capped at refreshBackoffMax. The
// attempts in the first T seconds of an outage are therefore at most
// 1 + log2(2T/s + 1): 3 in 3 s, 6 in 31 s, later one per 2.5 to 5 min, against
// an auth server that would rate-limit or ban a client retrying per
// request. The jitter keeps a fleet's processes from retrying in step.
const (
	refreshBackoffMin = time.Second
	refreshBackoffMax = 5 * time.Minute
)

// Defaults of the Manager's options.
const (
	// DefaultMetadataFlushInterval bounds metadata writes (MarkAPICall) to
	// one per five seconds: last_api_call_at is usage information, and a
	// durable write costs about a millisecond of disk time.
	DefaultMetadataFlushInterval = 5 * time.Second

	// DefaultUserAgent is the user agent of sessions created without
	// WithUserAgent. The seed picks a random desktop browser string; we
	// use a fixed one so that a session's user agent is reproducible.
	DefaultUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

	// defaultGState is the g_state cookie value of a new session, as the
	// seed's AuthCookies::default writes it.
	defaultGState = `{"i_l":0}`

	// turnkeyUsernamePrefixLen is how many characters of the Turnkey user
	// id the seed puts in the username it derives ("user_" + 8 chars).
	turnkeyUsernamePrefixLen = 8
)

// Bounds on the JSON of a session, shared by the reader (ParseSession)
// and the writer (MarshalPlaintext and every update of a Manager): stored
// bytes are hostile input, so the reader refuses anything past them, and
// the writer refuses, before anything is stored or changed in memory,
// every session the reader would refuse. A session that saves but does
// not load again is a lost login.
const (
	// maxSessionJSON is the largest session JSON accepted (1 MiB), equal
	// to the vault's cap on a sealed plaintext (vault.MaxPlaintextSize,
	// checked by a test). A real session is 1-4 KiB.
	maxSessionJSON = 1 << 20
	// maxStringLen bounds any one JSON string after unescaping (64 KiB),
	// keys included: a JWT is 1-2 KiB and browsers cap a cookie at 4 KiB.
	maxStringLen = 64 << 10
	// maxCookies bounds additional_cookies (4096). Browsers keep about 180
	// cookies per domain, but one session is shared by every process of
	// a fleet, and it must hold the contention harness's 8 processes x
	// 200 uniquely named cookies (1,600; about 32 KiB of JSON). Cookies
	// count against maxSessionJSON too, which is the binding bound for
	// large ones: at 4 KiB a cookie, about 250 fit.
	maxCookies = 4096
	// maxUnknownMembers bounds the members one object may have that this
	// package does not know (unknown.go; 64): a newer axiomtrade-rs adds
	// a field or two, not hundreds.
	maxUnknownMembers = 64
	// maxUnknownDepth bounds how deep an unknown member's value nests
	// (32), so that "[[[[..." costs no more than its length, and
	// maxUnknownItems how many members or elements one of its objects or
	// arrays holds (4096, maxCookies' bound).
	maxUnknownDepth = 32
	maxUnknownItems = 4096
	// maxAPIKeys bounds a Turnkey session's api_keys list (a user has a
	// handful).
	maxAPIKeys = 256
)

// maxKeptScratch is the largest plaintext buffer a Manager keeps, wiped,
// between its writes (64 KiB), so that it encodes without allocating: a
// real session is 1-4 KiB, and a Manager whose session once grew toward
// maxSessionJSON does not hold a megabyte for good. A larger session gets
// a new buffer per write, wiped and dropped after it.
const maxKeptScratch = 64 << 10

// scratchSlack is what the kept buffer has room for beyond the session's
// length when it is made (512 bytes): a new token of a few more bytes
// or a new stamp then reuses it rather than making a larger one.
const scratchSlack = 512

// maxDrain is how much of a dropped 401 response body is read so that its
// connection can be reused; a longer body is cut off (closing the
// connection costs less than reading megabytes).
const maxDrain = 64 << 10

// redacted is what a Secret prints instead of its bytes.
const redacted = "[REDACTED]"

// Timeouts and retries of store operations.
const (
	// DefaultRefreshTimeout bounds a refresh, including the wait for the
	// store lock held by another process's refresh.
	DefaultRefreshTimeout = 30 * time.Second
	// flushTimeout bounds one write-behind write, which has no caller
	// whose context could bound it.
	flushTimeout = 30 * time.Second
	// unlockTimeout bounds releasing a store lock after the caller's
	// context has ended (a lease must still be released).
	unlockTimeout = 5 * time.Second
	// maxUnavailableRetries and unavailableBackoff: a store that reports
	// backends.ErrUnavailable (a keychain or Redis briefly away) is tried
	// again up to three times, 50, 100 and 200 ms apart. Other errors,
	// corrupt data above all, are never retried.
	maxUnavailableRetries = 3
	unavailableBackoff    = 50 * time.Millisecond
)

// maxOAuth2CodeLen bounds the OAuth error code an *OAuth2Error keeps: the
// server chooses it, and RFC 6749's codes are at most 25 bytes.
const maxOAuth2CodeLen = 64
