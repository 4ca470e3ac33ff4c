// Package redis is a backends.Backend on Redis, for a fleet of processes
// on several hosts that share one vault: one session store, compare-and-set
// writes, and a lease lock so that exactly one process refreshes a token
// at a time. Blobs are sealed by the vault before they reach this package:
// the Redis server never sees a token or a key, but it does see the rest
// (see "What the server sees").
//
// # Keys
//
// Every key of a Backend starts with "{prefix}:" (WithPrefix; default
// DefaultPrefix). The braces make the prefix the Redis Cluster hash tag,
// so all keys of one vault live in one slot and each operation is one
// atomic Lua script on one node, with a single-node, Sentinel or Cluster
// client alike:
//
//	{prefix}:b:NAME     HASH, layout 2: layout ("2"), v (version), s (current
//	                    slot, "0" or "1"), d0 and d1 (the slots: the blob and
//	                    the previous generation), pv (previous version)
//	{prefix}:names      SET of the blob names, for List
//	{prefix}:seq        version counter (INCR)
//	{prefix}:lock:NAME  lease: owner token, with a TTL
//
// A version is "<counter>-<nonce>". The counter of a name grows by one
// with every write of it, and a name deleted and created again continues
// above its old counter (Delete raises {prefix}:seq to it; a new name
// takes INCR of {prefix}:seq), so a version is never reused and a lower
// counter is an older blob. The writer's random 64-bit nonce keeps a
// version unique even if a failover rolls a counter back.
//
// List reads the names SET, maintained by the same scripts that write and
// delete blobs, rather than SCANning the keyspace: it costs one round
// trip whatever else the server holds, needs no scan of every Cluster
// master, and is consistent with the writes (a SCAN can miss or repeat
// keys while they change).
//
// # Errors
//
// Errors are *backends.OpError values. Besides the backends categories:
// a refused or reset connection, a timeout, a server that is loading,
// read-only or down match backends.ErrUnavailable (wrapping the cause);
// NOAUTH, WRONGPASS and NOPERM match backends.ErrPermission; a key under
// the prefix that does not hold a blob of this package matches ErrCorrupt.
// A call whose context ends matches ctx.Err().
//
// # Leases
//
// Lock (backends.Locker) and Lease take a lease lock; see Lease for how
// the version check on Put fences a holder whose lease expired.
//
// # Failover: replica acknowledgment and rollback
//
// Redis replicates asynchronously: a write the master acknowledged can be
// lost when the master dies before a replica received it and Sentinel
// promotes that replica. WithReplicaAck(n, timeout) makes writes and
// leases wait for n replicas (WAIT), and fail with ErrNotReplicated when
// they do not come in time; a fleet behind Sentinel should use n = 1 (see
// WithReplicaAck). For a Sentinel setup, give New a go-redis failover
// client (goredis.NewFailoverClient), which follows the master Sentinel
// names; set its Dialer to LimitReplies(nil) (or a TLS dialer wrapped in
// it).
//
// A Backend also refuses, per name, a blob older than one it has already
// read or written (ErrRollback; WithRollbackCheck), which is what a client
// sees when a failover or a restore from an older copy loses writes.
//
// # Hostile servers
//
// The server, and anyone on the path of a plain redis:// connection,
// controls every reply. NewFromURL reads every connection through
// LimitReplies: a forged length, an oversized or malformed reply ends the
// connection with ErrBadReply (matching ErrCorrupt) before go-redis
// allocates for it, so one reply costs the client at most a small multiple
// of MaxReplyBytes. Every method also recovers a panic inside go-redis
// (which it raises on some forged lengths, "makeslice: len out of range",
// when a client given to New does not use LimitReplies) into ErrCorrupt.
// Use rediss:// (TLS) on any network you do not control: without it, the
// path can read the sealed blobs and forge replies.
//
// # What the server sees
//
// Sealed blobs only, never a token or a key; but not nothing. The server
// (and, without TLS, the network) sees: the key prefix and every session
// name in clear, in the key names and the names SET; how many sessions
// there are and each blob's size (so roughly each session's size); the
// version counters, so how often each session is written; the time of
// every read, write and lease, and so when and how often the fleet
// refreshes and which process (connection) holds the refresh lease; and
// the previous generation of each blob. Names are not hashed: choose
// session names that say nothing you would not show the server's
// operator.
package redis
