//go:build unix

package redis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// restartBlob is a self-checking 2 KiB blob: "name seq " then filler and a
// SHA-256 of everything before it, so a torn or mixed value shows.
func restartBlob(name string, seq int) []byte {
	b := fmt.Appendf(nil, "%s %d ", name, seq)
	for len(b) < 2048-sha256.Size {
		b = append(b, byte('a'+(len(b)+seq)%26))
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func parseRestartBlob(name string, b []byte) (int, error) {
	if len(b) != 2048 {
		return 0, fmt.Errorf("blob of %d bytes", len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return 0, errors.New("checksum mismatch: torn or corrupted blob")
	}
	var n string
	var seq int
	if _, err := fmt.Sscanf(string(body), "%s %d ", &n, &seq); err != nil || n != name {
		return 0, fmt.Errorf("bad header %q", body[:20])
	}
	if !bytes.Equal(b, restartBlob(name, seq)) {
		return 0, errors.New("content does not match its header")
	}
	return seq, nil
}

// TestRestart kills -9 a redis-server (with an fsync-always append-only
// file, so acknowledged writes are durable) while writers run, then
// starts it again: calls fail with ErrUnavailable while it is down, work
// again after, and every blob is whole, at or after its last acknowledged
// write.
func TestRestart(t *testing.T) {
	redisURL(t) // run with the other server tests
	srv := startServer(t, "--appendonly", "yes", "--appendfsync", "always")
	ctx := context.Background()
	b, err := NewFromURL(ctx, srv.url(), WithDialTimeout(500*time.Millisecond), WithLeaseTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	const writers = 4
	var (
		acked    [writers]atomic.Int64 // last seq whose Put returned nil
		tried    [writers]atomic.Int64 // highest seq ever sent
		okCount  [writers]atomic.Int64
		down     atomic.Bool
		mu       sync.Mutex
		downErrs []error // errors while the server was down
		badErrs  []error // errors that do not match ErrUnavailable
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if down.Load() {
			downErrs = append(downErrs, err)
		}
		if !errors.Is(err, backends.ErrUnavailable) {
			badErrs = append(badErrs, err)
		}
	}
	for i := range writers {
		name := "w" + strconv.Itoa(i)
		if _, err := b.Put(ctx, name, restartBlob(name, 0), backends.Absent); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				blob, v, err := b.Get(cctx, name)
				if err == nil {
					var seq int
					seq, err = parseRestartBlob(name, blob)
					if err != nil {
						cancel()
						t.Errorf("%s: %v", name, err)
						return
					}
					next := seq + 1
					tried[i].Store(int64(next))
					_, err = b.Put(cctx, name, restartBlob(name, next), v)
					if err == nil {
						acked[i].Store(int64(next))
						okCount[i].Add(1)
					} else if errors.Is(err, backends.ErrConflict) {
						// A Put whose reply was lost in the kill, seen
						// through its retry: re-read and go on.
						err = nil
					}
				}
				cancel()
				if err != nil {
					record(err)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	waitProgress := func(what string) {
		t.Helper()
		var base [writers]int64
		for i := range writers {
			base[i] = okCount[i].Load()
		}
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < writers; {
			if okCount[i].Load() >= base[i]+5 {
				i++
				continue
			}
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: writer %d made no progress", what, i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitProgress("before the kill")

	// kill -9 mid-run, stay down a while, start again on the same port.
	down.Store(true)
	srv.kill()
	time.Sleep(700 * time.Millisecond)
	// A call while the server is down fails at once or at its deadline
	// with ErrUnavailable (wrapping the network error) or the deadline.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, _, err = b.Get(cctx, "w0")
	cancel()
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get while down: %v, want ErrUnavailable", err)
	}
	if err := srv.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	down.Store(false)
	waitProgress("after the restart")

	// A stopped (not dead) server: calls end at their deadline.
	srv.cmd.Process.Signal(syscall.SIGSTOP)
	cctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, _, err = b.Get(cctx, "w0")
	cancel()
	took := time.Since(start)
	srv.cmd.Process.Signal(syscall.SIGCONT)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get from a stopped server: %v, want DeadlineExceeded and ErrUnavailable", err)
	}
	if took > 5*time.Second {
		t.Errorf("Get from a stopped server took %v with a 300ms deadline", took)
	}
	waitProgress("after SIGCONT")

	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(downErrs) == 0 {
		t.Error("no call failed while the server was down")
	}
	for _, err := range badErrs {
		t.Errorf("error of the wrong category: %v", err)
	}
	for i := range writers {
		name := "w" + strconv.Itoa(i)
		blob, _, err := b.Get(ctx, name)
		if err != nil {
			t.Fatalf("%s after the run: %v", name, err)
		}
		seq, err := parseRestartBlob(name, blob)
		if err != nil {
			t.Fatalf("%s after the run: %v", name, err)
		}
		if int64(seq) < acked[i].Load() || int64(seq) > tried[i].Load() {
			t.Errorf("%s: stored seq %d outside [last acknowledged %d, last sent %d]", name, seq, acked[i].Load(), tried[i].Load())
		}
	}
	if len(downErrs) > 0 {
		t.Logf("errors while down: %d (first: %v)", len(downErrs), downErrs[0])
	}
}
