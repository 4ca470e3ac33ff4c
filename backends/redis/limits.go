package redis

import (
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Limits and defaults, each with its reason.
const (
	// DefaultPrefix is the key prefix when WithPrefix is not given. Every
	// key of one Backend starts with "{" + prefix + "}:", so the prefix is
	// the Redis Cluster hash tag: all keys of one vault live in one slot,
	// which lets one Lua script touch a blob, the name index and the
	// version counter atomically.
	DefaultPrefix = "sessionvault"

	// MaxPrefixLen bounds the prefix: it is repeated in every key, and a
	// vault id or an application name fits easily.
	MaxPrefixLen = 128

	// DefaultMaxBlobSize is the largest blob Put accepts and Get returns:
	// the limit every backend must meet (see backends.MaxBlobSize for its
	// reason). WithMaxBlobSize may lower it, never raise it. A stored value
	// over the limit is refused: by a length check inside Redis where a
	// script reads it (Previous, the fallback read), otherwise by the
	// client's reply limits (maxReplyBulk, MaxReplyBytes) as its bytes
	// arrive, so a hostile value cannot make Get allocate without bound.
	DefaultMaxBlobSize = backends.MaxBlobSize

	// DefaultLeaseTTL is how long a lease lives without being extended.
	// A held Lease extends itself every TTL/3, so a live holder keeps it
	// through Redis hiccups and GC pauses of up to about 2/3 of the TTL,
	// while a holder that dies (kill -9, host lost) blocks the others for
	// at most 10 s: far inside the 15-minute early-refresh window of a
	// session, so no token expires while the fleet waits.
	DefaultLeaseTTL = 10 * time.Second

	// MinLeaseTTL is the shortest TTL WithLeaseTTL accepts: below it a
	// loopback round trip plus scheduling jitter could outlast the lease
	// before the first extension.
	MinLeaseTTL = 100 * time.Millisecond

	// MaxLeaseTTL is the longest: a crashed holder blocks everyone for the
	// whole TTL, so a longer lease is never what a fleet wants.
	MaxLeaseTTL = 10 * time.Minute

	// lockBackoffMin and lockBackoffMax bound the wait between attempts
	// while another process holds the lease. A refresh takes at least one
	// HTTP round trip (tens of ms), so polling faster than every 2 ms
	// wastes Redis time; capping at 100 ms keeps the hand-over latency
	// small while a fleet of hundreds polls at most a few thousand times a
	// second in total. Each wait is jittered so waiters do not march in
	// step.
	lockBackoffMin = 2 * time.Millisecond

	// releaseTimeout bounds the best-effort release of a lease that Lock
	// may have taken but does not return: long enough for a loopback or
	// LAN round trip, short enough not to delay the error much.
	releaseTimeout = 200 * time.Millisecond
	lockBackoffMax = 100 * time.Millisecond

	// nonceBytes is the size of the random part of a version. Versions are
	// "<counter>-<nonce>": the counter orders writes, the nonce keeps a
	// version unique even if a failover rolls the counter back, and lets a
	// retried Put recognise its own earlier success. 64 bits make an
	// accidental match between two writers negligible (2^-64 per pair).
	nonceBytes = 8

	// nonceBatch is how many nonces a Backend reads from crypto/rand at
	// once (nonceSource): 64 of them, 512 bytes, make the OS call one
	// write in 64 while keeping the buffer small.
	nonceBatch = 64

	// maxCounter bounds the counter the scripts compute with: they hold it
	// in a Lua number (a double), exact up to 2^53. 15 digits is far more
	// writes than a vault will ever see; a stored version beyond it is
	// treated as garbage (maxCounterDigits in the scripts).
	maxCounter = 999_999_999_999_999

	// maxVersionLen bounds a version read from Redis or given by a caller:
	// 20 decimal digits, a dash and the hex nonce.
	maxVersionLen = 20 + 1 + 2*nonceBytes
)

// Bounds on what a server may send (LimitReplies, NewFromURL). A hostile
// server, or anyone on a plain redis:// link, controls every length in a
// reply; go-redis allocates what a length says before reading the bytes.
const (
	// MaxReplyBytes bounds one reply, counting what go-redis allocates for
	// it: its strings' bytes and replyElemCost per array or map element.
	// The largest reply of this package is a Get of two blobs at the
	// limit (the HMGET of a name the Backend has no slot guess for reads
	// both slots of layout 2, the current blob and the previous
	// generation, plus a version); List of the largest names
	// (MaxNameLen) fits about 25,000 of them. Four blob limits leave room
	// for both with a margin: a client never holds more than a few times
	// this for one reply.
	MaxReplyBytes = 4 * DefaultMaxBlobSize

	// maxReplyBulk bounds one bulk string: a blob at the limit plus room
	// for anything else a command of this package reads (server replies
	// to HELLO, INFO-sized strings are far smaller).
	maxReplyBulk = DefaultMaxBlobSize + 1<<10

	// replyElemCost is what one array or map element costs the client
	// before its content: a 16-byte interface value in go-redis's slice.
	replyElemCost = 16

	// maxReplyDepth bounds nesting. This package's replies nest two deep
	// (a script's array of strings, HELLO's map holding an array); go-redis
	// parses nesting recursively, so an unbounded depth could exhaust the
	// goroutine stack, which is a fatal error, not a recoverable panic.
	maxReplyDepth = 8

	// maxReplyLine bounds a header line (a simple string, an error, a
	// number): Redis's own error lines are well under 1 KiB.
	maxReplyLine = 64 << 10
)

// Replica acknowledgment (WithReplicaAck).
const (
	// DefaultReplicaAckTimeout is the timeout docs and vaultctl suggest
	// with replica_ack: on loopback or a LAN a replica acknowledges within
	// a millisecond or two; 500 ms rides out a busy replica, yet a write
	// no replica holds fails well inside a refresh's deadline.
	DefaultReplicaAckTimeout = 500 * time.Millisecond

	// MaxReplicaAck bounds n: Sentinel setups have a handful of replicas.
	MaxReplicaAck = 16

	// MaxReplicaAckTimeout bounds the timeout: WAIT's reply comes in a
	// pipeline, whose reply go-redis reads under the client's
	// ReadTimeout (3 s by default), and a write held longer than this is
	// better reported than waited for.
	MaxReplicaAckTimeout = 2 * time.Second
)

// maxSeenNames bounds the names whose newest version a Backend remembers
// for WithRollbackCheck: about 40 bytes each, so at most a few MiB, far
// more names than a vault holds sessions.
const maxSeenNames = 1 << 16

// Get's slot guesses (slots.go).
const (
	// maxSlotGuesses bounds the names whose blob field a Backend
	// remembers, so that Get asks for one slot instead of both. Each
	// holds a name (at most backends.MaxNameLen bytes) and a version (at
	// most maxVersionLen): a few hundred bytes with the map's overhead
	// at the longest, so a few MiB in all, for more names than a vault
	// holds sessions. Beyond it an arbitrary guess is dropped; a name
	// without one is read with both slots, still in one round trip.
	maxSlotGuesses = 1 << 14

	// maxSlotReads bounds the HMGETs of one Get that ask for a single
	// field: the guess, and one more when another client's write moved
	// the blob to the other slot since this Backend saw it. A second miss
	// means writes land between every two reads: Get then asks for all
	// the fields, which one snapshot always answers, so a Get costs at
	// most maxSlotReads+1 HMGETs (and the script for a missing name),
	// each of them bounded by MaxReplyBytes.
	maxSlotReads = 2
)
