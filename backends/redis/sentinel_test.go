//go:build unix

package redis

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
)

// TestSentinel runs the conformance suite through a failover client that
// finds the master through a real Redis Sentinel.
func TestSentinel(t *testing.T) {
	redisURL(t) // run with the other server tests
	master := startServer(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	// Sentinel rewrites its configuration file, so it must be writable.
	if err := os.WriteFile(conf, []byte("sentinel monitor sv 127.0.0.1 "+itoa(master.port)+" 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := startSentinel(t, conf)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel.addr()})
	defer sc.Close()
	for {
		addr, err := sc.GetMasterAddrByName(ctx, "sv").Result()
		if err == nil && len(addr) == 2 && addr[1] == itoa(master.port) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("sentinel does not know the master: %v %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fc := goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName: "sv", SentinelAddrs: []string{sentinel.addr()}, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { fc.Close() })
	n := 0
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		n++
		b, err := New(fc, WithPrefix("sentinel-"+itoa(n)+"-"+randomHex(4)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, backendtest.Config{Writers: 4, Increments: 10})
}
