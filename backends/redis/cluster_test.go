//go:build unix

package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
)

// startCluster starts a three-master Redis Cluster on free loopback ports
// and returns a ClusterClient for it.
func startCluster(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	const nodes = 3
	var srvs []*server
	for range nodes {
		srvs = append(srvs, startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--appendonly", "no"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var clients []*goredis.Client
	for _, s := range srvs {
		c := goredis.NewClient(&goredis.Options{Addr: s.addr()})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	const slots = 16384
	for i, c := range clients {
		lo, hi := i*slots/nodes, (i+1)*slots/nodes-1
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	for _, s := range srvs[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", itoa(s.port)).Err(); err != nil {
			t.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("cluster did not become ready: %v\n%s", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var addrs []string
	for _, s := range srvs {
		addrs = append(addrs, s.addr())
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	// The client learns the slot map on its first command.
	for {
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("cluster client did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cc
}

// TestCluster runs the conformance suite through a ClusterClient on a real
// three-master Redis Cluster: every operation of a vault stays in the slot
// of its hash tag, and vaults with different prefixes land on different
// masters.
func TestCluster(t *testing.T) {
	redisURL(t) // run with the other server tests
	cc := startCluster(t)
	n := 0
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		n++
		b, err := New(cc, WithPrefix("cluster-"+itoa(n)+"-"+randomHex(4)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, backendtest.Config{Writers: 4, Increments: 10})

	// Prefixes spread over the masters: the suite above really ran on
	// more than one node.
	ctx := context.Background()
	masters := map[string]bool{}
	for i := range 30 {
		b, _ := New(cc, WithPrefix("spread-"+itoa(i)))
		if _, err := b.Put(ctx, "s", []byte("x"), backends.Any); err != nil {
			t.Fatal(err)
		}
		slot, err := cc.ClusterKeySlot(ctx, b.blobPrefix+"s").Result()
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := cc.ClusterKeySlot(ctx, b.indexKey).Result()
		if idx != slot {
			t.Fatalf("prefix %d: blob slot %d, index slot %d: keys do not share the hash tag", i, slot, idx)
		}
		masters[itoa(int(slot)*3/16384)] = true
		if names, err := b.List(ctx); err != nil || len(names) != 1 {
			t.Fatalf("List on the cluster = %q, %v", names, err)
		}
	}
	if len(masters) < 2 {
		t.Fatalf("30 prefixes all hashed to one master")
	}
}
