// Package redis is a backends.Backend on Redis, for a fleet of processes
// on several hosts that share one vault: one session store, compare-and-set
// writes, and a lease lock so that exactly one process refreshes a token
// at a time. Blobs are sealed by the vault before they reach this package:
// the Redis server only ever sees ciphertext.
//
// # Keys
//
// Every key of a Backend starts with "{prefix}:" (WithPrefix; default
// DefaultPrefix). The braces make the prefix the Redis Cluster hash tag,
// so all keys of one vault live in one slot and each operation is one
// atomic Lua script on one node, with a single-node, Sentinel or Cluster
// client alike:
//
//	{prefix}:b:NAME     HASH: v (version), d (blob), pv and pd (previous generation)
//	{prefix}:names      SET of the blob names, for List
//	{prefix}:seq        version counter (INCR)
//	{prefix}:lock:NAME  lease: owner token, with a TTL
//
// A version is "<counter>-<nonce>": the vault-wide counter only grows, so
// a version is never reused after a Delete, and the writer's random 64-bit
// nonce keeps it unique even if a failover rolls the counter back.
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
package redis
