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
	// over the limit is refused inside Redis before its bytes are sent, so
	// a hostile value cannot make Get allocate without bound.
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
	lockBackoffMax = 100 * time.Millisecond

	// nonceBytes is the size of the random part of a version. Versions are
	// "<counter>-<nonce>": the counter orders writes, the nonce keeps a
	// version unique even if a failover rolls the counter back, and lets a
	// retried Put recognise its own earlier success. 64 bits make an
	// accidental match between two writers negligible (2^-64 per pair).
	nonceBytes = 8

	// maxVersionLen bounds a version read from Redis or given by a caller:
	// 20 decimal digits, a dash and the hex nonce.
	maxVersionLen = 20 + 1 + 2*nonceBytes
)
