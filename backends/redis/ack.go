package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// WithReplicaAck makes every write (Put, Delete, Restore, DropPrevious,
// and the vault header, which is written with Put) and every lease
// acquisition and extension return only once n replicas hold it: the
// script and a WAIT n timeout go to the master in one pipeline, so they
// cost one round trip
// plus the replication delay. When fewer than n replicas acknowledge
// within timeout, the call fails with an error matching ErrNotReplicated:
// the write is on the master and may or may not survive a failover. A
// lease that is not acknowledged is released and Lock keeps trying.
//
// Redis replicates asynchronously: without this option, a write the
// master acknowledged and then lost in a failover (killed before its
// replicas received it) is a refresh token the fleet no longer has.
// TestFailover (internal/fleet) counts such losses with and without it.
//
// A fleet behind Sentinel should use n = 1 with one or two replicas and a
// timeout of a few hundred milliseconds (DefaultReplicaAckTimeout): a
// write then fails loudly instead of being lost silently, at the price of
// one replication round trip per write. n = 0 (the default) turns it off,
// which is right for a single server without replicas, where WAIT could
// never succeed. WAIT counts replicas that received the write in memory,
// not on disk: a failover in which every replica that had it is lost too
// loses it anyway. (WAITAOF, Redis 7.2 and later, would wait for the
// replicas' AOF fsync; this package does not send it: the Redis in its
// tests is 7.0, which lacks it.)
//
// The same options are accepted in NewFromURL's URL as the query
// parameters replica_ack=N and replica_ack_timeout=DURATION (a Go
// duration such as 500ms), so that vaultctl's --redis-url carries them.
func WithReplicaAck(n int, timeout time.Duration) Option {
	return func(c *config) error {
		if n < 0 || n > MaxReplicaAck {
			return fmt.Errorf("redis: replica ack count %d outside 0..%d", n, MaxReplicaAck)
		}
		if n > 0 && (timeout < time.Millisecond || timeout > MaxReplicaAckTimeout) {
			return fmt.Errorf("redis: replica ack timeout %v outside 1ms..%v", timeout, MaxReplicaAckTimeout)
		}
		c.replicaAck = n
		c.replicaAckTimeout = timeout
		c.replicaAckSet = true
		return nil
	}
}

// write runs the write script s on the master, with the arguments of
// evalArgs (or of the same shape: args[0] and args[1] are set here). With
// WithReplicaAck it sends WAIT in the same pipeline, on the same
// connection (WAIT counts the replicas that hold the connection's writes),
// and returns how many replicas acknowledged; acked is -1 without replica
// acknowledgment. waitErr is WAIT's own error (a replica given as master,
// say).
func (b *Backend) write(ctx context.Context, s *script, args []any) (res any, acked int64, waitErr, err error) {
	var c cmdProcessor = b.client
	if b.cfg.replicaAck > 0 {
		if cc, ok := b.client.(*goredis.ClusterClient); ok {
			// A Cluster pipeline would send the keyless WAIT to any
			// node: send both to the master of the key's slot.
			key, _ := args[3].(string)
			node, err := cc.MasterForKey(ctx, key)
			if err != nil {
				return nil, -1, nil, err
			}
			c = node
		}
	}
	for _, sha := range []bool{true, false} {
		if sha {
			args[0], args[1] = "evalsha", s.sha
		} else {
			args[0], args[1] = "eval", s.src
		}
		ev := goredis.NewCmd(ctx, args...)
		ev.SetFirstKeyPos(3)
		var w *goredis.Cmd
		if b.cfg.replicaAck == 0 {
			c.Process(ctx, ev)
		} else {
			p, ok := c.(interface{ Pipeline() goredis.Pipeliner })
			if !ok {
				return nil, -1, nil, fmt.Errorf("redis: client of type %T cannot pipeline", c)
			}
			pipe := p.Pipeline()
			pipe.Process(ctx, ev)
			w = pipe.Do(ctx, "wait", b.cfg.replicaAck, b.cfg.replicaAckTimeout.Milliseconds())
			pipe.Exec(ctx)
		}
		res, err = ev.Result()
		if sha && err != nil && (goredis.HasErrorPrefix(err, "NOSCRIPT") || errors.Is(err, goredis.ErrNoScript)) {
			continue
		}
		if err != nil {
			return nil, -1, nil, err
		}
		if w == nil {
			return res, -1, nil, nil
		}
		acked, waitErr = w.Int64()
		if waitErr == nil && acked < 0 {
			// WAIT counts replicas: a negative count is a forged
			// reply, and -1 is what this function returns when no
			// acknowledgment was asked for. Counted as none.
			acked = 0
		}
		return res, acked, waitErr, nil
	}
	panic("unreachable")
}

// cmdProcessor is what write sends its commands through: the Backend's
// client, or in a Cluster the master of the key's slot.
type cmdProcessor interface {
	Process(ctx context.Context, cmd goredis.Cmder) error
}

// notReplicated returns the error of a write that reached the master but
// not n replicas, or nil when it did.
func (b *Backend) notReplicated(op, name string, acked int64, waitErr error) error {
	if acked < 0 || (waitErr == nil && acked >= int64(b.cfg.replicaAck)) {
		return nil
	}
	if waitErr != nil {
		return opErr(op, name, ErrNotReplicated,
			fmt.Errorf("written on the master, but WAIT failed (%w): it may or may not survive a failover", waitErr))
	}
	return opErr(op, name, ErrNotReplicated,
		fmt.Errorf("written on the master, but %d of %d replicas acknowledged within %v: it may or may not survive a failover",
			acked, b.cfg.replicaAck, b.cfg.replicaAckTimeout))
}
