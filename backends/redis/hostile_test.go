package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/figures"
)

// hostileServer is a TCP listener on loopback that speaks enough RESP for
// go-redis to connect (HELLO refused, so the client falls back to RESP2;
// CLIENT, PING and SELECT answered) and answers every other command with
// reply, which may be anything: a forged length, garbage, an oversized
// reply. It is the real network path a hostile server or a man in the
// middle of a plain redis:// link controls.
type hostileServer struct {
	ln    net.Listener
	reply func(w *bufio.Writer, cmd []string)
	wg    sync.WaitGroup
}

func startHostile(t *testing.T, reply func(w *bufio.Writer, cmd []string)) *hostileServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hostileServer{ln: ln, reply: reply}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *hostileServer) url() string { return "redis://" + s.ln.Addr().String() + "/0" }

func (s *hostileServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		cmd, err := readCommand(r)
		if err != nil {
			return
		}
		switch strings.ToUpper(cmd[0]) {
		case "HELLO":
			w.WriteString("-ERR unknown command 'HELLO'\r\n")
		case "CLIENT", "SELECT":
			w.WriteString("+OK\r\n")
		case "PING":
			w.WriteString("+PONG\r\n")
		default:
			s.reply(w, cmd)
		}
		if w.Flush() != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings (a client command).
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 4 || line[0] != '*' {
		return nil, errors.New("not a command")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 64 {
		return nil, errors.New("bad count")
	}
	cmd := make([]string, n)
	for i := range cmd {
		h, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l, err := strconv.Atoi(strings.TrimSpace(h[1:]))
		if err != nil || l < 0 || l > 4<<20 {
			return nil, errors.New("bad length")
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		cmd[i] = string(b[:l])
	}
	return cmd, nil
}

// hostileReplies are the replies every backend call must survive: each
// one is sent in answer to the call's first command (HMGET for Get,
// EVALSHA for the others).
var hostileReplies = []struct {
	name  string
	reply string
}{
	{"bulk length beyond makeslice", "$9223372036854775807\r\n"},
	{"bulk length 1.5 GiB", "$1610612736\r\nabc"},
	{"negative bulk length", "$-7\r\n"},
	{"array count beyond makeslice", "*4611686018427387904\r\n"},
	{"array count 1e9", "*1000000000\r\n"},
	{"map count beyond makeslice", "%4611686018427387904\r\n"},
	{"nested 100000 deep", strings.Repeat("*1\r\n", 100000) + ":1\r\n"},
	{"header line of 1 MiB", "+" + strings.Repeat("a", 1<<20)},
	{"garbage", "hello world\r\n"},
	{"binary garbage", "\x00\xff\xfe\r\n"},
	{"length not a number", "$12x\r\nabc\r\n"},
	{"bulk not followed by CRLF", "$3\r\nabcXY:1\r\n"},
	{"attribute", "|1\r\n+a\r\n+b\r\n+OK\r\n"},
	{"streamed string", "$?\r\n;3\r\nabc\r\n;0\r\n"},
	{"integer instead of an array", ":5\r\n"},
	{"array of three", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
	{"array of integers", "*2\r\n:1\r\n:2\r\n"},
	{"nested arrays", "*2\r\n*1\r\n:1\r\n*1\r\n:2\r\n"},
	{"error reply", "-ERR something\r\n"},
	{"null", "$-1\r\n"},
	{"empty array", "*0\r\n"},
	{"bulk of 3 MiB", "$3145728\r\n" + strings.Repeat("x", 3<<20) + "\r\n"},
	{"two bulks of 1 MiB each, a version and blob too large", "*2\r\n$1048576\r\n" + strings.Repeat("1", 1<<20) +
		"\r\n$1048576\r\n" + strings.Repeat("x", 1<<20) + "\r\n"},
}

// callAll runs every Backend method once against b and returns the errors.
// Each call has a 2 s deadline: a reply can also stall a call (go-redis
// reads ":5" in answer to HMGET as the header of a 5-element array and
// waits for the elements), which the caller's deadline bounds.
func callAll(ctx context.Context, b *Backend) map[string]error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	errs := map[string]error{}
	defer func(t0 time.Time) {
		if d := time.Since(t0); d > 3*time.Second {
			errs["all calls"] = fmt.Errorf("took %v", d)
		}
	}(time.Now())
	_, _, errs["get"] = b.Get(ctx, "s")
	_, _, errs["previous"] = b.Previous(ctx, "s")
	_, errs["put"] = b.Put(ctx, "s", []byte("x"), backends.Any)
	_, errs["restore"] = b.Restore(ctx, "s", backends.Any)
	errs["delete"] = b.Delete(ctx, "s", backends.Any)
	_, errs["list"] = b.List(ctx)
	lctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	l, err := b.Lock(lctx, "L")
	cancel()
	if err == nil {
		errs["unlock"] = l.Unlock(ctx)
	}
	errs["lock"] = err
	return errs
}

// TestHostileServer: no reply of a hostile server panics the client or
// makes it allocate beyond its bounds; every call ends in a typed error.
// With NewFromURL (LimitReplies on every connection), a reply that breaks
// the protocol or the size limits matches ErrBadReply and ErrCorrupt; with
// a plain go-redis client given to New, the panics go-redis raises on
// forged lengths are recovered into ErrCorrupt. Figures: "redis/hostile"
// (a panic of a call is recovered and counted, so that one panicking
// reply does not hide the others).
func TestHostileServer(t *testing.T) {
	ctx := context.Background()
	fig := figures.New("redis/hostile")
	fig.Declare("replies", "calls", "max_calls_per_reply", "panics", "untyped", "plain_client_calls",
		"plain_client_recovered")
	for _, tc := range hostileReplies {
		fig.Inc("replies")
		t.Run(tc.name, func(t *testing.T) {
			srv := startHostile(t, func(w *bufio.Writer, cmd []string) { w.WriteString(tc.reply) })

			b, err := NewFromURL(ctx, srv.url(), WithDialTimeout(time.Second))
			if err != nil {
				t.Fatalf("NewFromURL: %v", err)
			}
			defer b.Close()
			var errs map[string]error
			if p := figures.Protect(func() { errs = callAll(ctx, b) }); p != nil {
				fig.Inc("panics")
				t.Fatalf("NewFromURL: %v", p)
			}
			fig.Add("calls", int64(len(errs)))
			fig.Max("max_calls_per_reply", int64(len(errs)))
			for op, err := range errs {
				if !checkHostileErr(t, "NewFromURL", op, err) {
					fig.Inc("untyped")
				}
			}

			// A caller's own client without LimitReplies: the panics of
			// go-redis are recovered. (Its allocations are not bounded:
			// "array count 1e9" makes go-redis allocate 16 GB, a fatal
			// out-of-memory error no recover catches; hence LimitReplies.)
			if !strings.Contains(tc.name, "makeslice") {
				return
			}
			plain := goredis.NewClient(&goredis.Options{Addr: srv.ln.Addr().String(), MaxRetries: -1,
				ReadTimeout: time.Second, ContextTimeoutEnabled: true})
			defer plain.Close()
			pb, err := New(plain)
			if err != nil {
				t.Fatal(err)
			}
			fig.Inc("plain_client_calls")
			if p := figures.Protect(func() { _, _, err = pb.Get(ctx, "s") }); p != nil {
				fig.Inc("panics")
				t.Fatalf("New, get: %v", p)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("New, get: %v, want ErrCorrupt (a recovered panic)", err)
			} else {
				fig.Inc("plain_client_recovered")
			}
			if !checkHostileErr(t, "New", "get", err) {
				fig.Inc("untyped")
			}
		})
	}
	fig.Report(t)
}

// checkHostileErr fails t unless err is what a call answered by a hostile
// server may return (a typed *backends.OpError with a short message), and
// reports whether it is.
func checkHostileErr(t *testing.T, how, op string, err error) bool {
	t.Helper()
	if err == nil {
		if op == "unlock" || op == "list" {
			return true // a lease "taken", names "listed": harmless lies
		}
		t.Errorf("%s, %s: no error", how, op)
		return false
	}
	var oe *backends.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s, %s: %T %v, want a *backends.OpError", how, op, err, err)
		return false
	}
	ok := true
	typed := errors.Is(err, ErrCorrupt) || errors.Is(err, backends.ErrUnavailable) ||
		errors.Is(err, backends.ErrNotFound) || errors.Is(err, backends.ErrLocked) ||
		errors.Is(err, context.DeadlineExceeded)
	if !typed && oe.Kind == nil {
		// A Redis error reply (-ERR) is reported as such: not a category.
		var rerr goredis.Error
		if !errors.As(err, &rerr) && !strings.Contains(err.Error(), "unexpected reply") {
			t.Errorf("%s, %s: %v: no category", how, op, err)
			ok = false
		}
	}
	if len(err.Error()) > 400 {
		t.Errorf("%s, %s: error of %d bytes quotes the reply", how, op, len(err.Error()))
		ok = false
	}
	return ok
}

// TestHostileServerMemory measures what the client allocates for one
// reply (runtime TotalAlloc around a Get, through NewFromURL): a forged
// length costs nothing beyond the buffer, a reply at the size limit (both
// slots of layout 2 full) a small multiple of the blob, and an oversized reply is cut off at the limit.
// Figures: "redis/hostile-memory", the bytes allocated per case (KEY_bytes)
// and, for the blob at the limit, the allocation in percent of the blob.
func TestHostileServerMemory(t *testing.T) {
	ctx := context.Background()
	blob := strings.Repeat("x", DefaultMaxBlobSize)
	cases := []struct {
		name  string
		key   string
		reply string
		ok    bool
	}{
		// A Get of a name the Backend has not seen yet (no slot guess)
		// reads both slots of layout 2 in its HMGET: the current blob and
		// the previous generation, both at the limit. (A guessed read asks
		// for one slot: its reply holds at most one blob.)
		{"blob at the limit", "blob_at_limit", fmt.Sprintf("*6\r\n$1\r\n2\r\n$18\r\n1-0123456789abcdef\r\n$1\r\n0\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$-1\r\n",
			len(blob), blob, len(blob), blob), true},
		{"forged 1.5 GiB bulk", "forged_bulk", "$1610612736\r\nabc", false},
		{"forged 1e9-element array", "forged_array", "*1000000000\r\n", false},
		{"64 MiB bulk sent", "sent_64mib", "$67108864\r\n" + strings.Repeat("y", 64<<20) + "\r\n", false},
	}
	fig := figures.New("redis/hostile-memory")
	fig.Add("blob_limit_bytes", DefaultMaxBlobSize)
	for _, tc := range cases {
		srv := startHostile(t, func(w *bufio.Writer, cmd []string) { w.WriteString(tc.reply) })
		b, err := NewFromURL(ctx, srv.url(), WithDialTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, _, err = b.Get(ctx, "s")
		runtime.ReadMemStats(&m1)
		b.Close()
		alloc := m1.TotalAlloc - m0.TotalAlloc
		t.Logf("%s: allocated %d bytes (%.2fx the blob limit): %v", tc.name, alloc,
			float64(alloc)/DefaultMaxBlobSize, err)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v", tc.name, err)
		}
		fig.Add(tc.key+"_bytes", int64(alloc))
		if tc.key == "blob_at_limit" {
			fig.Add("blob_at_limit_percent", int64(alloc*100/DefaultMaxBlobSize))
		}
		// Two blobs in the reply (both slots) and Get's copy of the
		// current one: 3x, plus go-redis's buffers.
		if alloc > 4*DefaultMaxBlobSize {
			t.Errorf("%s: %d bytes allocated for one reply, over 4x the blob limit", tc.name, alloc)
		}
	}
	fig.Report(t)
}

// TestHostileWaitNegative: a server that answers the WAIT a write with
// WithReplicaAck sends with a negative replica count does not make the
// write count as replicated: Put fails with ErrNotReplicated.
func TestHostileWaitNegative(t *testing.T) {
	ctx := context.Background()
	srv := startHostile(t, func(w *bufio.Writer, cmd []string) {
		switch strings.ToUpper(cmd[0]) {
		case "EVALSHA", "EVAL":
			v := "7-" + strings.Repeat("0", 2*nonceBytes)
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(v), v)
		case "WAIT":
			w.WriteString(":-1\r\n")
		default:
			w.WriteString("-ERR not here\r\n")
		}
	})
	b, err := NewFromURL(ctx, srv.url(), WithDialTimeout(time.Second), WithReplicaAck(1, 100*time.Millisecond))
	if err != nil {
		t.Fatalf("NewFromURL: %v", err)
	}
	defer b.Close()
	if _, err := b.Put(ctx, "s", []byte("blob"), backends.Any); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("Put answered WAIT -1: %v, want ErrNotReplicated", err)
	}
}
