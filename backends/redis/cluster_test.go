//go:build unix

package redis

import (
	"context"
	"errors"
	"slices"
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
	cc, _, _ := startClusterReplicas(t, nil)
	return cc
}

// startClusterReplicas starts a three-master Redis Cluster, with one
// replica for each master i where replica[i] is true, and returns a
// ClusterClient for it, the masters and the replicas (nil where none).
func startClusterReplicas(t *testing.T, replica []bool) (*goredis.ClusterClient, []*server, []*server) {
	t.Helper()
	const nodes = 3
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "5000", "--appendonly", "no", "--repl-diskless-sync-delay", "0"}
	var srvs []*server
	for range nodes {
		srvs = append(srvs, startServer(t, args...))
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
	reps := make([]*server, nodes)
	var repClients []*goredis.Client
	for i := range replica {
		if i < nodes && replica[i] {
			reps[i] = startServer(t, args...)
			c := goredis.NewClient(&goredis.Options{Addr: reps[i].addr()})
			t.Cleanup(func() { c.Close() })
			repClients = append(repClients, c)
		}
	}
	all := slices.Concat(srvs, slices.DeleteFunc(slices.Clone(reps), func(s *server) bool { return s == nil }))
	for _, s := range all[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", itoa(s.port)).Err(); err != nil {
			t.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	known := "cluster_known_nodes:" + itoa(len(all))
	waitInfo := func(c *goredis.Client, what string, info func() (string, error), want ...string) {
		for {
			s, err := info()
			ok := err == nil
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s did not become ready: %v\n%s", what, err, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, c := range slices.Concat(clients, repClients) {
		waitInfo(c, "cluster", func() (string, error) { return c.ClusterInfo(ctx).Result() }, known)
	}
	for i, r := range reps {
		if r == nil {
			continue
		}
		id, err := clients[i].ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		rc := goredis.NewClient(&goredis.Options{Addr: r.addr()})
		t.Cleanup(func() { rc.Close() })
		if err := rc.ClusterReplicate(ctx, id).Err(); err != nil {
			t.Fatalf("CLUSTER REPLICATE: %v", err)
		}
		waitInfo(rc, "replica", func() (string, error) { return rc.Info(ctx, "replication").Result() }, "master_link_status:up")
	}
	for _, c := range slices.Concat(clients, repClients) {
		waitInfo(c, "cluster", func() (string, error) { return c.ClusterInfo(ctx).Result() }, "cluster_state:ok", known)
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
	return cc, srvs, reps
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

// TestClusterReplicaAck: WithReplicaAck on a Redis Cluster sends WAIT to
// the master of the vault's slot. A vault whose master has a replica gets
// every Put and DropPrevious acknowledged (and the replica holds it when
// the call returns); a vault whose master has none gets ErrNotReplicated,
// with the write on the master.
func TestClusterReplicaAck(t *testing.T) {
	redisURL(t) // run with the other server tests
	cc, masters, replicas := startClusterReplicas(t, []bool{true, true, false})
	ctx := context.Background()
	// withReplica is long: under load a replica's first sync, or a
	// WAIT, can take longer than the short timeout, which the calls
	// without a replica wait out each time.
	const timeout, withReplica = 200 * time.Millisecond, 2 * time.Second
	// prefixOn returns a prefix whose slot is served by a master with
	// (or without) a replica.
	prefixOn := func(withReplica bool) (string, *server) {
		for i := range 200 {
			p := "ack-" + itoa(i) + "-" + randomHex(4)
			m, err := cc.MasterForKey(ctx, "{"+p+"}:b:s")
			if err != nil {
				t.Fatal(err)
			}
			for j, s := range masters {
				if m.Options().Addr == s.addr() && (replicas[j] != nil) == withReplica {
					return p, replicas[j]
				}
			}
		}
		t.Fatal("no prefix hashed to the wanted master")
		return "", nil
	}

	p, rep := prefixOn(true)
	b, err := New(cc, WithPrefix(p), WithReplicaAck(1, withReplica))
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(&goredis.Options{Addr: rep.addr()})
	defer rc.Close()
	conn := rc.Conn()
	defer conn.Close()
	if err := conn.ReadOnly(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	v := backends.Absent
	for i := range 20 {
		if v, err = b.Put(ctx, "s", []byte{byte(i)}, v); err != nil {
			t.Fatalf("Put %d with a replica: %v", i, err)
		}
		if got, err := conn.HGet(ctx, "{"+p+"}:b:s", "v").Result(); got != string(v) {
			t.Fatalf("Put %d returned %s before the replica held it (replica: %q, %v)", i, v, got, err)
		}
	}
	if err := b.DropPrevious(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.HLen(ctx, "{"+p+"}:b:s").Result(); err != nil || n != 4 {
		t.Fatalf("replica holds %d fields after DropPrevious returned (%v), want 4 (no previous slot, no pv)", n, err)
	}
	if err := b.Delete(ctx, "s", v); err != nil {
		t.Fatalf("Delete with a replica: %v", err)
	}

	p, _ = prefixOn(false)
	b, err = New(cc, WithPrefix(p), WithReplicaAck(1, timeout))
	if err != nil {
		t.Fatal(err)
	}
	v, err = b.Put(ctx, "s", []byte("x"), backends.Absent)
	if !errors.Is(err, ErrNotReplicated) || !validVersion(string(v)) {
		t.Fatalf("Put without a replica = %q, %v, want a version and ErrNotReplicated", v, err)
	}
	if got, gv, err := b.Get(ctx, "s"); err != nil || gv != v || string(got) != "x" {
		t.Fatalf("Get after the unreplicated Put = %q, %q, %v (the write is on the master)", got, gv, err)
	}
	if _, err := b.Put(ctx, "s", []byte("y"), v); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("second Put without a replica: %v, want ErrNotReplicated", err)
	}
	if err := b.DropPrevious(ctx, "s"); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("DropPrevious without a replica: %v, want ErrNotReplicated", err)
	}
	if _, _, err := b.Previous(ctx, "s"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Previous after the unreplicated DropPrevious: %v, want ErrNotFound (dropped on the master)", err)
	}
}
