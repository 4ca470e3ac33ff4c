package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// Tests run against a real redis-server. scripts/with-redis starts one and
// exports its URL; without it the tests skip, except in CI
// (CI=true or SESSIONVAULT_REQUIRE_SERVICES=1), where they fail.
const (
	envURL    = "SESSIONVAULT_REDIS_URL"
	envServer = "SESSIONVAULT_REDIS_SERVER"
)

func servicesRequired() bool {
	return servicetest.Required()
}

func missingService(t testing.TB, what string) {
	t.Helper()
	msg := what + " is not available; run the tests under scripts/with-redis (e.g. scripts/with-redis go test ./backends/redis/)"
	if servicesRequired() {
		t.Fatal(msg + " [required: CI=true or SESSIONVAULT_REQUIRE_SERVICES=1]")
	}
	t.Skip(msg)
}

// redisURL returns the shared test server's URL or skips (fails in CI).
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		missingService(t, envURL)
	}
	return u
}

// redisServerBin returns the path of a redis-server binary for tests that
// run (and kill) servers of their own.
func redisServerBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envServer); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		missingService(t, "redis-server (set "+envServer+")")
	}
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testPrefix returns a prefix no other test uses, and removes its keys
// when the test ends.
func testPrefix(t testing.TB, url string) string {
	t.Helper()
	prefix := "svtest-" + randomHex(6)
	t.Cleanup(func() {
		c := rawClient(t, url)
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// rawClient returns a plain go-redis client for the test server, closed
// at cleanup, for setting up garbage and for baselines.
func rawClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// newTestBackend connects to the shared server under a fresh prefix.
func newTestBackend(t testing.TB, opts ...Option) (*Backend, string) {
	t.Helper()
	url := redisURL(t)
	prefix := testPrefix(t, url)
	b, err := NewFromURL(context.Background(), url, append([]Option{WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("NewFromURL: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, prefix
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a redis-server the test owns: it can kill -9 it and start it
// again on the same port and directory.
type server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	// configFirst, when set, replaces the generated flags: a config file
	// (and --sentinel) must come first on redis-server's command line.
	configFirst []string
	cmd         *exec.Cmd
	exit        chan struct{}
}

// startServer starts a redis-server on a free port with extra arguments.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	return launch(t, &server{t: t, bin: redisServerBin(t), dir: t.TempDir(), args: extra})
}

// startSentinel starts a Redis Sentinel with the configuration file conf,
// which must be writable (Sentinel rewrites it).
func startSentinel(t testing.TB, conf string) *server {
	t.Helper()
	return launch(t, &server{t: t, bin: redisServerBin(t), dir: filepath.Dir(conf),
		configFirst: []string{conf, "--sentinel"}})
}

func launch(t testing.TB, s *server) *server {
	t.Helper()
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		if err := s.start(); err == nil {
			break
		} else if attempt == 5 {
			t.Fatalf("redis-server did not start: %v", err)
		}
	}
	t.Cleanup(s.kill)
	return s
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }
func (s *server) url() string  { return "redis://" + s.addr() + "/0" }

func (s *server) start() error {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
		"--daemonize", "no", "--save", "", "--logfile", filepath.Join(s.dir, "redis.log")}
	args = append(args, s.args...)
	if s.configFirst != nil {
		args = append(append([]string{}, s.configFirst...), "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
			"--dir", s.dir, "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"))
	}
	if i := indexOf(args, "--tls-port"); i >= 0 {
		// TLS only: the plain port is 0, the TLS port is ours.
		args[3] = "0"
		args[i+1] = strconv.Itoa(s.port)
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	s.exit = exit
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exit) }(s.cmd)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", lastLines(string(log), 5))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond); err == nil {
			c.Close()
			if s.ready() {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	return errors.New("redis-server did not answer within 10 s")
}

// ready reports whether the server answers (and has finished loading).
func (s *server) ready() bool {
	if indexOf(s.args, "--tls-port") >= 0 {
		return true // the TCP accept above is all a plain probe can see
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// kill sends SIGKILL and waits for the process to exit.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exit
	s.cmd = nil
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// roundTrips counts the commands a client sends: with no pipelining, each
// is one network round trip.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
