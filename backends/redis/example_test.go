package redis_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/redis"
)

// Connect to a shared Redis with an ACL user, keeping the password out of
// the URL.
func ExampleNewFromURL() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	password := []byte(os.Getenv("REDIS_PASSWORD"))
	b, err := redis.NewFromURL(ctx, "redis://redis.internal:6379/0",
		redis.WithPrefix("trading-fleet"),
		redis.WithCredentials("sessionvault", password),
	)
	clear(password)
	if err != nil {
		log.Fatal(err) // errors.Is(err, backends.ErrPermission) for refused credentials
	}
	defer b.Close()
	// Hand b to vault.Open or vault.Create.
}

// Refresh a token once for the whole fleet: take the lease, re-read, and
// write with the version just read. If the lease ran out meanwhile and
// someone else wrote, Put fails with ErrConflict instead of overwriting
// the newer session.
func ExampleBackend_Lease() {
	ctx := context.Background()
	b, err := redis.NewFromURL(ctx, os.Getenv("SESSIONVAULT_REDIS_URL"), redis.WithPrefix("trading-fleet"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	lease, err := b.Lease(ctx, "main")
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Unlock(ctx)

	blob, v, err := b.Get(ctx, "main")
	if err != nil {
		log.Fatal(err)
	}
	refreshed := refresh(blob) // unseal, refresh the token, seal again
	if _, err := b.Put(ctx, "main", refreshed, v); errors.Is(err, backends.ErrConflict) {
		// Someone else refreshed while our lease was lost: use theirs.
		return
	} else if err != nil {
		log.Fatal(err)
	}
}

func refresh(sealed []byte) []byte { return sealed }

// A fleet behind Redis Sentinel: a failover client follows the master
// Sentinel names, LimitReplies bounds what any server can make the client
// allocate, and WithReplicaAck makes every write wait for one replica, so
// that a failover loses no acknowledged write.
func ExampleWithReplicaAck() {
	ctx := context.Background()
	fc := goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName:            "sessions",
		SentinelAddrs:         []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
		Dialer:                redis.LimitReplies(nil), // wrap a TLS dialer instead on an open network
		ContextTimeoutEnabled: true,
	})
	defer fc.Close()
	b, err := redis.New(fc, redis.WithPrefix("trading-fleet"),
		redis.WithReplicaAck(1, redis.DefaultReplicaAckTimeout))
	if err != nil {
		log.Fatal(err)
	}
	v, err := b.Put(ctx, "main", []byte("sealed bytes"), backends.Absent)
	switch {
	case errors.Is(err, redis.ErrNotReplicated):
		// On the master, not yet on a replica: it may or may not survive
		// a failover now. Re-read before deciding; v is its version.
		_ = v
	case err != nil:
		log.Fatal(err)
	}
}
