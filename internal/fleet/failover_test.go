//go:build unix

package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// The failover test needs scripts/with-redis --sentinel (a master, two
// replicas, three Sentinels on loopback):
//
//	scripts/with-redis --sentinel go test -run TestFailover -v ./internal/fleet/
//
// SESSIONVAULT_LONG=1 runs the long version (>= 20 failovers).
const (
	envSentinels = "SESSIONVAULT_SENTINEL_ADDRS"
	envMaster    = "SESSIONVAULT_SENTINEL_MASTER"
	envSDir      = "SESSIONVAULT_SENTINEL_DIR"
	envServer    = "SESSIONVAULT_REDIS_SERVER"
)

// sentinelSetup is the setup scripts/with-redis --sentinel started.
type sentinelSetup struct {
	t      *testing.T
	addrs  []string
	master string
	dir    string
	bin    string
	sc     *goredis.SentinelClient
}

func sentinelEnv(t *testing.T) *sentinelSetup {
	t.Helper()
	addrs, master, dir, bin := os.Getenv(envSentinels), os.Getenv(envMaster), os.Getenv(envSDir), os.Getenv(envServer)
	if addrs == "" || master == "" || dir == "" || bin == "" {
		msg := envSentinels + " is not set; run under scripts/with-redis --sentinel " +
			"(scripts/with-redis --sentinel go test -run TestFailover -v ./internal/fleet/)"
		if servicetest.Required() {
			t.Fatal(msg + " [required: CI=true or SESSIONVAULT_REQUIRE_SERVICES=1]")
		}
		t.Skip(msg)
	}
	s := &sentinelSetup{t: t, addrs: strings.Split(addrs, ","), master: master, dir: dir, bin: bin}
	s.sc = goredis.NewSentinelClient(&goredis.Options{Addr: s.addrs[0], DialTimeout: time.Second})
	t.Cleanup(func() { s.sc.Close() })
	return s
}

// masterAddr asks every Sentinel for the current master and returns it
// when they all agree.
func (s *sentinelSetup) masterAddr(ctx context.Context) (string, error) {
	var m string
	for _, a := range s.addrs {
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: a, DialTimeout: time.Second})
		r, err := sc.GetMasterAddrByName(ctx, s.master).Result()
		sc.Close()
		if err != nil || len(r) != 2 {
			return "", fmt.Errorf("sentinel %s: %v", a, err)
		}
		if got := r[0] + ":" + r[1]; m == "" {
			m = got
		} else if got != m {
			return "", fmt.Errorf("sentinels disagree: %s, %s", m, got)
		}
	}
	return m, nil
}

func info(ctx context.Context, addr, section string) (string, error) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	return c.Info(ctx, section).Result()
}

func infoField(info, key string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+":"); ok {
			return v
		}
	}
	return ""
}

// waitHealthy waits until the Sentinels agree on a master that answers as
// a master with two replicas online, twice 300 ms apart, and returns its
// address.
func (s *sentinelSetup) waitHealthy(ctx context.Context) (string, error) {
	m, err := s.healthy(ctx)
	for err == nil {
		time.Sleep(300 * time.Millisecond)
		var again string
		if again, err = s.healthy(ctx); err == nil && again == m {
			return m, nil
		}
		m = again
	}
	return "", err
}

func (s *sentinelSetup) healthy(ctx context.Context) (string, error) {
	var last string
	for ctx.Err() == nil {
		m, err := s.masterAddr(ctx)
		if err == nil {
			in, err := info(ctx, m, "replication")
			if err == nil && infoField(in, "role") == "master" &&
				infoField(in, "connected_slaves") == "2" &&
				strings.Count(in, "state=online") == 2 {
				return m, nil
			}
			last = fmt.Sprintf("master %s: %v %q", m, err, infoField(in, "connected_slaves"))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("setup not healthy: %s", last)
}

// killMaster SIGKILLs the current master (its pid from INFO server), waits
// for the Sentinels to promote a replica, starts the killed server again
// as a replica of the new master, and waits for a healthy setup.
func (s *sentinelSetup) killMaster(ctx context.Context) error {
	old, err := s.waitHealthy(ctx)
	if err != nil {
		return err
	}
	in, err := info(ctx, old, "server")
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(infoField(in, "process_id"))
	if err != nil {
		return fmt.Errorf("master pid: %v", err)
	}
	tKill := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill master: %v", err)
	}
	var nm string
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("no failover from %s", old)
		}
		if m, err := s.masterAddr(ctx); err == nil && m != old {
			if in, err := info(ctx, m, "replication"); err == nil && infoField(in, "role") == "master" {
				nm = m
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tPromoted := time.Now()
	if err := s.restart(old, nm); err != nil {
		return err
	}
	m, err := s.waitHealthy(ctx)
	if err == nil {
		s.t.Logf("killed %s; promoted %s after %v; healthy (master %s) after %v", old, nm,
			tPromoted.Sub(tKill), m, time.Since(tKill))
	}
	return err
}

// restart starts the server that listened on addr again (from its args
// file), as a replica of master. It writes the same pid file, so
// scripts/with-redis stops it at the end.
func (s *sentinelSetup) restart(addr, master string) error {
	_, port, _ := strings.Cut(addr, ":")
	dirs, _ := filepath.Glob(filepath.Join(s.dir, "*", "args"))
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		var args []string
		mine := false
		for i := 0; i < len(lines); i++ {
			switch lines[i] {
			case "--replicaof":
				i += 2
				continue
			case "--port":
				mine = i+1 < len(lines) && lines[i+1] == port
			}
			args = append(args, lines[i])
		}
		if !mine {
			continue
		}
		mh, mp, _ := strings.Cut(master, ":")
		args = append(args, "--replicaof", mh, mp)
		cmd := exec.Command(s.bin, args...)
		if err := cmd.Start(); err != nil {
			return err
		}
		go cmd.Wait()
		return nil
	}
	return fmt.Errorf("no args file for %s", addr)
}

// backend returns a Backend that follows the Sentinels' master through a
// go-redis failover client whose connections go through redis.LimitReplies.
func (s *sentinelSetup) backend(t *testing.T, prefix string, opts ...redis.Option) *redis.Backend {
	t.Helper()
	fc := goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName: s.master, SentinelAddrs: s.addrs, ContextTimeoutEnabled: true,
		Dialer:      redis.LimitReplies(nil),
		DialTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: 2, PoolSize: 4,
	})
	t.Cleanup(func() { fc.Close() })
	b, err := redis.New(fc, append([]redis.Option{redis.WithPrefix(prefix), redis.WithLeaseTTL(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fleetStats are the counts of one run.
type fleetStats struct {
	acked, ackedAck    atomic.Int64
	notReplicated      atomic.Int64
	rollbacks          atomic.Int64
	conflicts          atomic.Int64
	unavailable        atomic.Int64
	untyped            atomic.Int64
	panics             atomic.Int64
	refreshes, doubles atomic.Int64
	holders            atomic.Int64
	mu                 sync.Mutex
	ackedIDs           map[string][]uint64 // name -> acknowledged write ids
	untypedSample      []string
}

func (st *fleetStats) typed(err error) {
	switch {
	case errors.Is(err, backends.ErrConflict):
		st.conflicts.Add(1)
	case errors.Is(err, redis.ErrRollback):
		st.rollbacks.Add(1)
	case errors.Is(err, redis.ErrNotReplicated):
		st.notReplicated.Add(1)
	case errors.Is(err, backends.ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, backends.ErrLocked), errors.Is(err, redis.ErrLeaseLost), errors.Is(err, backends.ErrNotFound):
		st.unavailable.Add(1)
	default:
		st.untyped.Add(1)
		st.mu.Lock()
		if len(st.untypedSample) < 5 {
			st.untypedSample = append(st.untypedSample, err.Error())
		}
		st.mu.Unlock()
	}
}

// writer does compare-and-set appends of its own write ids to name until
// ctx ends, recording every acknowledged one.
func writer(ctx context.Context, st *fleetStats, b *redis.Backend, id uint16, names []string, ack bool) {
	defer func() {
		if r := recover(); r != nil {
			st.panics.Add(1)
		}
	}()
	var seq uint64
	for i := 0; ctx.Err() == nil; i++ {
		name := names[i%len(names)]
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		blob, v, err := b.Get(octx, name)
		if errors.Is(err, backends.ErrNotFound) {
			blob, v, err = nil, backends.Absent, nil
		}
		if err == nil {
			seq++
			wid := uint64(id)<<48 | seq
			nb := binary.BigEndian.AppendUint64(append([]byte(nil), blob...), wid)
			_, err = b.Put(octx, name, nb, v)
			if err == nil {
				st.mu.Lock()
				st.ackedIDs[name] = append(st.ackedIDs[name], wid)
				st.mu.Unlock()
				if ack {
					st.ackedAck.Add(1)
				} else {
					st.acked.Add(1)
				}
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.typed(err)
			if errors.Is(err, redis.ErrRollback) {
				b.Forget(name) // accept what the server now holds
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// leaseRefresher takes the refresh lease, holds it for a while (a token
// refresh), and counts holders: two at once is a double refresh.
func leaseRefresher(ctx context.Context, st *fleetStats, b *redis.Backend) {
	defer func() {
		if r := recover(); r != nil {
			st.panics.Add(1)
		}
	}()
	for ctx.Err() == nil {
		l, err := b.Lease(ctx, "refresh")
		if err != nil {
			if ctx.Err() == nil {
				st.typed(err)
			}
			continue
		}
		if st.holders.Add(1) > 1 {
			st.doubles.Add(1)
		}
		st.refreshes.Add(1)
		t := time.NewTimer(150 * time.Millisecond)
		select {
		case <-t.C:
		case <-l.Lost(): // presumed lost: stop acting as the refresher
		case <-ctx.Done():
		}
		t.Stop()
		st.holders.Add(-1)
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := l.Unlock(uctx); err != nil {
			st.typed(err)
		}
		cancel()
		time.Sleep(5 * time.Millisecond)
	}
}

// lost counts the acknowledged write ids missing from the final blobs.
func lostWrites(ctx context.Context, t *testing.T, b *redis.Backend, names []string, acked map[string][]uint64) int {
	lost := 0
	for _, name := range names {
		blob, _, err := b.Get(ctx, name)
		if err != nil && !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("final read of %s: %v", name, err)
		}
		have := map[uint64]bool{}
		for i := 0; i+8 <= len(blob); i += 8 {
			have[binary.BigEndian.Uint64(blob[i:])] = true
		}
		for _, id := range acked[name] {
			if !have[id] {
				lost++
			}
		}
	}
	return lost
}

// TestFailover: a fleet of writers doing compare-and-set updates, half of
// them with WithReplicaAck(1, 500ms), and three lease refreshers (with
// replica acknowledgment), while the master is SIGKILLed again and again
// and Sentinel promotes a replica each time. Every acknowledged write is
// recorded; after the run the final blobs are checked for each of them.
// Figures: acknowledged writes lost without replica acknowledgment
// (whatever they are: reported), with it (0 in every run), double
// refreshes (0), panics (0), and every error typed, in the figures set
// "fleet/failover", whose first seven keys are the "failover:" line the
// test also prints.
func TestFailover(t *testing.T) {
	s := sentinelEnv(t)
	runs, killsPerRun := 1, 3
	if os.Getenv("SESSIONVAULT_LONG") == "1" {
		runs, killsPerRun = 4, 6
	}
	const writersPerGroup = 4
	fig := figures.New("fleet/failover")
	fig.Declare("runs", "failovers", "acked", "lost_without_ack", "lost_with_ack", "double_refreshes", "panics",
		"acked_without_ack", "acked_with_ack", "lease_holds", "untyped_errors", "not_replicated", "rollbacks_refused")
	fig.Add("runs", int64(runs))
	for run := range runs {
		st := &fleetStats{ackedIDs: map[string][]uint64{}}
		prefix := "failover-" + randomHex(4)
		noAckNames := []string{"n0", "n1"}
		ackNames := []string{"a0", "a1"}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range writersPerGroup {
			nb := s.backend(t, prefix)
			ab := s.backend(t, prefix, redis.WithReplicaAck(1, 500*time.Millisecond))
			wg.Add(2)
			go func() { defer wg.Done(); writer(ctx, st, nb, uint16(i), noAckNames, false) }()
			go func() { defer wg.Done(); writer(ctx, st, ab, uint16(100+i), ackNames, true) }()
		}
		for range 3 {
			rb := s.backend(t, prefix, redis.WithReplicaAck(1, 500*time.Millisecond))
			wg.Add(1)
			go func() { defer wg.Done(); leaseRefresher(ctx, st, rb) }()
		}
		t0 := time.Now()
		for k := range killsPerRun {
			time.Sleep(400 * time.Millisecond) // writes in flight on the master
			kctx, kcancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.killMaster(kctx)
			kcancel()
			if err != nil {
				cancel()
				wg.Wait()
				t.Fatalf("run %d, failover %d: %v", run, k, err)
			}
			fig.Inc("failovers")
			{
				st.mu.Lock()
				cp := map[string][]uint64{}
				for k, v := range st.ackedIDs {
					cp[k] = append([]uint64(nil), v...)
				}
				st.mu.Unlock()
				dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
				t.Logf("after failover %d (%v): lost so far %d", k, time.Since(t0), lostWrites(dctx, t, s.backend(t, prefix), noAckNames, cp))
				dcancel()
			}
		}
		time.Sleep(400 * time.Millisecond)
		cancel()
		wg.Wait()

		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		check := s.backend(t, prefix)
		lostNoAck := lostWrites(cctx, t, check, noAckNames, st.ackedIDs)
		lostAck := lostWrites(cctx, t, check, ackNames, st.ackedIDs)
		ccancel()
		t.Logf("run %d: %d failovers; acked %d without replica ack (%d lost), %d with (%d lost); "+
			"not replicated %d, rollbacks refused %d, conflicts %d, unavailable %d; refreshes %d, double %d; panics %d, untyped errors %d %q",
			run, killsPerRun, st.acked.Load(), lostNoAck, st.ackedAck.Load(), lostAck,
			st.notReplicated.Load(), st.rollbacks.Load(), st.conflicts.Load(), st.unavailable.Load(),
			st.refreshes.Load(), st.doubles.Load(), st.panics.Load(), st.untyped.Load(), st.untypedSample)
		if lostAck != 0 {
			t.Errorf("run %d: %d writes acknowledged by a replica lost", run, lostAck)
		}
		if st.doubles.Load() != 0 {
			t.Errorf("run %d: %d double refreshes", run, st.doubles.Load())
		}
		if st.panics.Load() != 0 || st.untyped.Load() != 0 {
			t.Errorf("run %d: %d panics, %d untyped errors", run, st.panics.Load(), st.untyped.Load())
		}
		if st.ackedAck.Load() == 0 || st.acked.Load() == 0 || st.refreshes.Load() == 0 {
			t.Errorf("run %d: the fleet did no work", run)
		}
		fig.Add("acked", st.acked.Load()+st.ackedAck.Load())
		fig.Add("lost_without_ack", int64(lostNoAck))
		fig.Add("lost_with_ack", int64(lostAck))
		fig.Add("double_refreshes", st.doubles.Load())
		fig.Add("panics", st.panics.Load())
		fig.Add("acked_without_ack", st.acked.Load())
		fig.Add("acked_with_ack", st.ackedAck.Load())
		fig.Add("lease_holds", st.refreshes.Load())
		fig.Add("untyped_errors", st.untyped.Load())
		fig.Add("not_replicated", st.notReplicated.Load())
		fig.Add("rollbacks_refused", st.rollbacks.Load())
	}
	line := fmt.Sprintf("failover: runs=%d failovers=%d acked=%d lost_without_ack=%d lost_with_ack=%d double_refreshes=%d panics=%d",
		fig.Get("runs"), fig.Get("failovers"), fig.Get("acked"), fig.Get("lost_without_ack"),
		fig.Get("lost_with_ack"), fig.Get("double_refreshes"), fig.Get("panics"))
	t.Log(line)
	fmt.Println(line)
	fig.Report(t)
}
