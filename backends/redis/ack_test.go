//go:build unix

package redis

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/figures"
)

// startReplica starts a redis-server replicating master and waits until
// its link is up.
func startReplica(t *testing.T, master *server) *server {
	t.Helper()
	r := startServer(t, "--replicaof", "127.0.0.1", itoa(master.port))
	c := goredis.NewClient(&goredis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := c.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica link not up: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaAck: with replica_ack=1 in the URL, Put, Delete and Lock
// return once the replica holds the write (read back from the replica
// right after); with the replica stopped (SIGSTOP), Put fails within the
// timeout with ErrNotReplicated, returns the version the master holds,
// and Lock keeps trying instead of taking a lease only the master knows.
// Figures: "redis/replica-ack".
func TestReplicaAck(t *testing.T) {
	redisURL(t)
	fig := figures.New("redis/replica-ack")
	fig.Declare("puts", "read_back_from_replica", "timeout_ms", "stopped_put_ms", "stopped_put_not_replicated",
		"stopped_delete_not_replicated", "stopped_lock_refused", "leases_left")
	master := startServer(t)
	replica := startReplica(t, master)
	ctx := context.Background()
	const timeout = 300 * time.Millisecond
	b, err := NewFromURL(ctx, master.url()+"?replica_ack=1&replica_ack_timeout="+timeout.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rc := goredis.NewClient(&goredis.Options{Addr: replica.addr()})
	defer rc.Close()
	key := "{" + DefaultPrefix + "}:b:s"

	v := backends.Absent
	for i := range 50 {
		if v, err = b.Put(ctx, "s", []byte{byte(i)}, v); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		fig.Inc("puts")
		if got, _ := rc.HGet(ctx, key, "v").Result(); got != string(v) {
			t.Fatalf("Put %d returned %s before the replica held it (replica: %q)", i, v, got)
		}
		fig.Inc("read_back_from_replica")
	}
	l, err := b.Lock(ctx, "L")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.Exists(ctx, "{"+DefaultPrefix+"}:lock:L").Result(); n != 1 {
		t.Fatal("Lock returned before the replica held the lease")
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// The replica stops acknowledging.
	replica.cmd.Process.Signal(syscall.SIGSTOP)
	defer replica.cmd.Process.Signal(syscall.SIGCONT)
	t0 := time.Now()
	nv, err := b.Put(ctx, "s", []byte("unacked"), v)
	took := time.Since(t0)
	if !errors.Is(err, ErrNotReplicated) || nv == "" {
		t.Fatalf("Put with the replica stopped: %q, %v; want a version and ErrNotReplicated", nv, err)
	}
	fig.Add("timeout_ms", timeout.Milliseconds())
	fig.Add("stopped_put_ms", took.Milliseconds())
	fig.Inc("stopped_put_not_replicated")
	if took < timeout || took > 3*time.Second {
		t.Errorf("Put took %v with a %v timeout", took, timeout)
	}
	if !strings.Contains(err.Error(), "may or may not survive") || !strings.Contains(err.Error(), "0 of 1 replicas") {
		t.Errorf("error does not say what happened: %v", err)
	}
	if got, _, err := b.Get(ctx, "s"); err != nil || string(got) != "unacked" {
		t.Fatalf("the master should hold the unacknowledged write: %q %v", got, err)
	}
	if err := b.Delete(ctx, "s", nv); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("Delete with the replica stopped: %v, want ErrNotReplicated", err)
	}
	fig.Inc("stopped_delete_not_replicated")
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = b.Lock(lctx, "L2")
	cancel()
	if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("Lock with the replica stopped: %v, want ErrUnavailable (not replicated)", err)
	}
	fig.Inc("stopped_lock_refused")
	n, err := b.client.Exists(ctx, "{"+DefaultPrefix+"}:lock:L2").Result()
	if err != nil {
		t.Fatal(err)
	}
	fig.Add("leases_left", n)
	if n != 0 {
		t.Error("an unacknowledged lease was left on the master")
	}
	replica.cmd.Process.Signal(syscall.SIGCONT)
	lctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if l, err := b.Lock(lctx, "L2"); err != nil {
		t.Fatalf("Lock after the replica came back: %v", err)
	} else {
		l.Unlock(ctx)
	}
	fig.Report(t)
}

// TestReplicaAckNoReplica: on a server without replicas every write fails
// with ErrNotReplicated (WAIT cannot succeed), and the options are checked.
// Figures: "redis/replica-ack-none".
func TestReplicaAckNoReplica(t *testing.T) {
	b, _ := newTestBackend(t, WithReplicaAck(1, 50*time.Millisecond))
	ctx := context.Background()
	fig := figures.New("redis/replica-ack-none")
	fig.Declare("put_not_replicated", "bad_options", "bad_options_refused", "bad_urls", "bad_urls_refused")
	if _, err := b.Put(ctx, "s", []byte("x"), backends.Any); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("Put: %v, want ErrNotReplicated", err)
	}
	fig.Inc("put_not_replicated")
	for _, o := range []Option{WithReplicaAck(-1, time.Second), WithReplicaAck(17, time.Second),
		WithReplicaAck(1, 0), WithReplicaAck(1, 3*time.Second)} {
		fig.Inc("bad_options")
		if _, err := buildConfig([]Option{o}); err == nil {
			t.Error("invalid WithReplicaAck accepted")
		} else {
			fig.Inc("bad_options_refused")
		}
	}
	for _, q := range []string{"replica_ack=x", "replica_ack=1&replica_ack_timeout=forever", "replica_ack=99",
		"replica_ack_timeout=1s"} {
		fig.Inc("bad_urls")
		if _, err := NewFromURL(ctx, redisURL(t)+"?"+q); err == nil || !strings.Contains(err.Error(), "replica_ack") {
			t.Errorf("URL option %q: %v, want a replica_ack error", q, err)
		} else {
			fig.Inc("bad_urls_refused")
		}
	}
	fig.Report(t)
}

// TestStaleDataRefused: a server that comes back with older data (here:
// killed, then started from an RDB snapshot taken three writes earlier)
// does not make a client accept an older blob than one it has seen: Get
// fails with ErrRollback. After Forget, the client reads the older blob
// and its next write gets a version above everything it had seen, so that
// a second client that saw the lost writes accepts it. Figures:
// "redis/stale-data".
func TestStaleDataRefused(t *testing.T) {
	redisURL(t)
	fig := figures.New("redis/stale-data")
	fig.Declare("writes_after_snapshot", "clients", "clients_refused", "counter_seen", "counter_after_forget")
	srv := startServer(t)
	ctx := context.Background()
	b, err := NewFromURL(ctx, srv.url(), WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	other, err := NewFromURL(ctx, srv.url(), WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	v, err := b.Put(ctx, "s", []byte("gen 1"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.client.Save(ctx).Err(); err != nil { // the stale copy
		t.Fatal(err)
	}
	for _, g := range []string{"gen 2", "gen 3", "gen 4"} {
		if v, err = b.Put(ctx, "s", []byte(g), v); err != nil {
			t.Fatal(err)
		}
		fig.Inc("writes_after_snapshot")
	}
	if _, _, err := other.Get(ctx, "s"); err != nil { // other saw gen 4
		t.Fatal(err)
	}
	srv.kill()
	if err := srv.start(); err != nil { // loads dump.rdb: gen 1
		t.Fatal(err)
	}

	fig.Add("clients", 2)
	_, _, err = b.Get(ctx, "s")
	if !errors.Is(err, ErrRollback) {
		t.Fatalf("Get of the stale copy: %v, want ErrRollback", err)
	}
	fig.Inc("clients_refused")
	if _, _, err := other.Get(ctx, "s"); !errors.Is(err, ErrRollback) {
		t.Fatalf("other client, Get of the stale copy: %v, want ErrRollback", err)
	}
	fig.Inc("clients_refused")
	// (The vault's own rollback check, a counter sealed in the session,
	// refuses the same blob after a restart of the client too: see the
	// vault package's tests.)

	b.Forget("s")
	got, old, err := b.Get(ctx, "s")
	if err != nil || string(got) != "gen 1" {
		t.Fatalf("Get after Forget: %q %v", got, err)
	}
	nv, err := b.Put(ctx, "s", []byte("gen 5"), old)
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := counter(nv)
	vc, _ := counter(v)
	fig.Add("counter_seen", int64(vc))
	fig.Add("counter_after_forget", int64(nc))
	if nc <= vc {
		t.Fatalf("write after the rollback got counter %d, not above the %d seen before", nc, vc)
	}
	if got, _, err := other.Get(ctx, "s"); err != nil || string(got) != "gen 5" {
		t.Fatalf("other client after the new write: %q %v", got, err)
	}
	fig.Report(t)
}
