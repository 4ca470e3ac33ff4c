package redis

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
)

// lossyConn loses the reply of the request it carries when armed: the
// request reaches the real server and runs, then the connection drops
// before the reply is read, as when a network path dies at that moment.
// A real network cannot be made to do this on cue, hence the wrapper.
type lossyConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c *lossyConn) Read(p []byte) (int, error) {
	if c.armed.CompareAndSwap(true, false) {
		time.Sleep(50 * time.Millisecond) // let the server run the command
		c.Conn.Close()
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// TestPutRetryAfterLostReply: go-redis retries a Put whose reply was lost
// after the server applied it; the script recognises its own write by the
// nonce and reports success, not a false conflict, and no extra version
// is created.
func TestPutRetryAfterLostReply(t *testing.T) {
	url := redisURL(t)
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &lossyConn{Conn: c, armed: &armed}, nil
	}
	opt.MaxRetries = 2
	client := goredis.NewClient(opt)
	defer client.Close()
	b, err := New(client, WithPrefix(testPrefix(t, url)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v1, err := b.Put(ctx, "s", []byte("one"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	v2, err := b.Put(ctx, "s", []byte("two"), v1)
	if armed.Load() {
		t.Fatal("the reply was not lost: the test did not exercise a retry")
	}
	if err != nil {
		t.Fatalf("Put retried after a lost reply: %v, want success", err)
	}
	got, gv, err := b.Get(ctx, "s")
	if err != nil || string(got) != "two" || gv != v2 {
		t.Fatalf("Get = %q, %q, %v; want two, %q", got, gv, err, v2)
	}
	prev, pv, err := b.Previous(ctx, "s")
	if err != nil || string(prev) != "one" || pv != v1 {
		t.Fatalf("Previous = %q, %q, %v; want one, %q (the retry must not write twice)", prev, pv, err, v1)
	}

	// The same for taking a lease: the retried acquire finds it its own.
	armed.Store(true)
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l, err := b.Lock(lctx, "s")
	if err != nil {
		t.Fatalf("Lock retried after a lost reply: %v (waited for its own lease?)", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}
