package redis

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
)

// The benchmarks run the backend and its baseline (raw go-redis commands
// on the same bytes, same server, same kind of client) interleaved in one
// loop, so that both see the same machine load, and report:
//
//	ns/op          the backend's operation
//	baseline-ns/op the raw commands'
//	x-baseline     the ratio
//	roundtrips/op  commands sent per operation (a go-redis hook counts them)
//
// Goals (issue 16): Get at most 1.1x a raw GET (BenchmarkGet2KiB); Put at
// most 1.1x the floor of any script-based write, a script that only SETs
// the same bytes (BenchmarkPutFloor2KiB, in the same loop). The floor is
// itself 1.2-1.4x a raw SET on Redis 7.0 on these machines (loopback, 2
// shared cores: BenchmarkLuaFloor2KiB), which is why Put is measured
// against it: Put stays one atomic compare-and-set script that keeps the
// previous generation (in layout 2 without moving it: the new blob goes
// into the other slot). BenchmarkPut2KiB keeps the comparison with SET.

func benchClients(b *testing.B, opts ...Option) (*Backend, *goredis.Client, *roundTrips, string) {
	url := redisURL(b)
	bk, prefix := newTestBackend(b, opts...)
	rt := &roundTrips{}
	bk.client.AddHook(rt)
	raw, err := goredis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	raw.ContextTimeoutEnabled = true
	c := goredis.NewClient(raw)
	b.Cleanup(func() { c.Close() })
	return bk, c, rt, "{" + prefix + "}:raw"
}

func report(b *testing.B, ours, base time.Duration, rt *roundTrips) {
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(ours)/float64(base), "x-baseline")
	if rt != nil {
		b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
	}
}

// BenchmarkGet2KiB: Get of a 2 KiB blob vs GET of the same bytes. The
// name holds a 2 KiB previous generation too, as a session does after
// its first refresh: Get's HMGET asks only for the slot the Backend
// expects the blob in (the one its own Puts left current), so the reply
// carries one blob, not both.
func BenchmarkGet2KiB(b *testing.B) {
	bk, c, rt, rawKey := benchClients(b)
	ctx := context.Background()
	blob := make([]byte, 2048)
	rand.Read(blob)
	for range 2 {
		if _, err := bk.Put(ctx, "s", blob, backends.Any); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Set(ctx, rawKey, blob, 0).Err(); err != nil {
		b.Fatal(err)
	}
	bk.Get(ctx, "s") // load the script
	rt.n.Store(0)
	var ours, base time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		got, _, err := bk.Get(ctx, "s")
		t1 := time.Now()
		raw, err2 := c.Get(ctx, rawKey).Bytes()
		t2 := time.Now()
		if err != nil || err2 != nil || len(got) != len(blob) || len(raw) != len(blob) {
			b.Fatal(err, err2)
		}
		ours += t1.Sub(t0)
		base += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, ours, base, rt)
}

// BenchmarkPut2KiB: a compare-and-set Put of a 2 KiB blob vs an
// unconditional SET of the same bytes, keeping the previous generation
// (the default) and without (WithKeepPrevious(false)).
func BenchmarkPut2KiB(b *testing.B) {
	b.Run("keep-previous", func(b *testing.B) { benchPut(b) })
	b.Run("no-previous", func(b *testing.B) { benchPut(b, WithKeepPrevious(false)) })
}

func benchPut(b *testing.B, opts ...Option) {
	bk, c, rt, rawKey := benchClients(b, opts...)
	ctx := context.Background()
	blob := make([]byte, 2048)
	rand.Read(blob)
	v, err := bk.Put(ctx, "s", blob, backends.Any)
	if err != nil {
		b.Fatal(err)
	}
	rt.n.Store(0)
	var ours, base time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		v, err = bk.Put(ctx, "s", blob, v)
		t1 := time.Now()
		err2 := c.Set(ctx, rawKey, blob, 0).Err()
		t2 := time.Now()
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		ours += t1.Sub(t0)
		base += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, ours, base, rt)
}

// BenchmarkPutFloor2KiB: a compare-and-set Put of a 2 KiB blob (keeping
// the previous generation) vs a script that only SETs the same bytes
// (luaSetScript), interleaved. x-baseline is Put's cost over the floor of
// any script-based write (goal: at most 1.1).
func BenchmarkPutFloor2KiB(b *testing.B) {
	bk, c, rt, rawKey := benchClients(b)
	ctx := context.Background()
	blob := make([]byte, 2048)
	rand.Read(blob)
	v, err := bk.Put(ctx, "s", blob, backends.Any)
	if err != nil {
		b.Fatal(err)
	}
	luaKey := rawKey + "-lua"
	if err := luaSetScript.Run(ctx, c, []string{luaKey}, blob).Err(); err != nil {
		b.Fatal(err)
	}
	rt.n.Store(0)
	var ours, base time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		v, err = bk.Put(ctx, "s", blob, v)
		t1 := time.Now()
		err2 := luaSetScript.Run(ctx, c, []string{luaKey}, blob).Err()
		t2 := time.Now()
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		ours += t1.Sub(t0)
		base += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, ours, base, rt)

	// The server's own time per script run (INFO commandstats), which
	// the machine's scheduling noise touches far less than the round
	// trip: Put and the floor in alternating chunks of 100, 10 each.
	var sPut, sFloor float64
	for range 10 {
		u0 := evalshaUsec(b, c)
		for range 100 {
			if v, err = bk.Put(ctx, "s", blob, v); err != nil {
				b.Fatal(err)
			}
		}
		u1 := evalshaUsec(b, c)
		for range 100 {
			if err := luaSetScript.Run(ctx, c, []string{luaKey}, blob).Err(); err != nil {
				b.Fatal(err)
			}
		}
		u2 := evalshaUsec(b, c)
		sPut += u1 - u0
		sFloor += u2 - u1
	}
	b.ReportMetric(sPut*1000/1000, "server-ns/op")
	b.ReportMetric(sFloor*1000/1000, "server-baseline-ns/op")
	b.ReportMetric(sPut/sFloor, "server-x-baseline")
}

// evalshaUsec returns the server's total EVALSHA time in microseconds.
func evalshaUsec(b *testing.B, c *goredis.Client) float64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_evalsha:"); ok {
			for _, f := range strings.Split(rest, ",") {
				if u, ok := strings.CutPrefix(f, "usec="); ok {
					n, err := strconv.ParseFloat(u, 64)
					if err != nil {
						b.Fatal(err)
					}
					return n
				}
			}
		}
	}
	return 0
}

// BenchmarkLockUnlock: an uncontended Lock + Unlock vs the bare minimum
// of a lock, SET NX PX + DEL (which cannot check the owner on release).
func BenchmarkLockUnlock(b *testing.B) {
	bk, c, rt, rawKey := benchClients(b)
	ctx := context.Background()
	l, err := bk.Lock(ctx, "L") // load the scripts
	if err != nil {
		b.Fatal(err)
	}
	l.Unlock(ctx)
	rt.n.Store(0)
	var ours, base time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		l, err := bk.Lock(ctx, "L")
		if err == nil {
			err = l.Unlock(ctx)
		}
		t1 := time.Now()
		ok, err2 := c.SetNX(ctx, rawKey, "token", 10*time.Second).Result()
		if err2 == nil {
			err2 = c.Del(ctx, rawKey).Err()
		}
		t2 := time.Now()
		if err != nil || err2 != nil || !ok {
			b.Fatal(err, err2, ok)
		}
		ours += t1.Sub(t0)
		base += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, ours, base, rt)
}

// luaSetScript does nothing but the SET of the baseline, from Lua.
var luaSetScript = goredis.NewScript(`return redis.call('SET', KEYS[1], ARGV[1])`)

// BenchmarkLuaFloor2KiB measures the floor under Put's ratio: a script
// that only SETs the same 2 KiB (no read, no version check, no previous
// generation) against the raw SET, interleaved. Every compare-and-set
// Put pays at least this (EVALSHA: script lookup, Lua arguments, the
// call back into Redis, the reply conversion), so Put's x-baseline
// cannot go below this one's on the same server.
func BenchmarkLuaFloor2KiB(b *testing.B) {
	_, c, _, rawKey := benchClients(b)
	ctx := context.Background()
	blob := make([]byte, 2048)
	rand.Read(blob)
	luaKey := rawKey + "-lua"
	if err := luaSetScript.Run(ctx, c, []string{luaKey}, blob).Err(); err != nil {
		b.Fatal(err)
	}
	var ours, base time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		err := luaSetScript.Run(ctx, c, []string{luaKey}, blob).Err()
		t1 := time.Now()
		err2 := c.Set(ctx, rawKey, blob, 0).Err()
		t2 := time.Now()
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		ours += t1.Sub(t0)
		base += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, ours, base, nil)
}

// scriptParts are the pieces of the put script's common path, measured
// alone by BenchmarkPutScriptParts2KiB.
var scriptParts = []struct{ name, src string }{
	{"floor-SET", `return redis.call('SET', KEYS[1], ARGV[1])`},
	{"cas-HGET-HSET3", `local v = redis.call('HGET', KEYS[1], 'v')
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[1], 'pv', v or '') return ARGV[2]`},
	{"layout1-cas+previous-HMGET-HSET4", `local r = redis.call('HMGET', KEYS[1], 'v', 'd')
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[1], 'pv', r[1] or '', 'pd', r[2] or '') return ARGV[2]`},
	{"layout2-cas+previous-slots-HMGET3-HSET4", `local r = redis.call('HMGET', KEYS[1], 'v', 's', 'layout')
local o = '1' if r[2] == '1' then o = '0' end
redis.call('HSET', KEYS[1], 'd' .. o, ARGV[1], 'v', ARGV[2], 's', o, 'pv', r[1] or '') return ARGV[2]`},
	{"floor-SET+unused-2KiB-arg", `return redis.call('SET', KEYS[1], ARGV[1])`},
}

// BenchmarkPutScriptParts2KiB reports the server time (INFO commandstats)
// of the parts of a compare-and-set that keeps the previous generation:
// the floor (one SET), the version check and write without the previous
// blob, layout 1's common path (the previous blob read into Lua and
// written back as pd), layout 2's (three short fields read, the new blob
// written into the other slot: the previous blob stays where it is), and
// the floor with a second, unused 2 KiB argument (what any 2 KiB that
// enters Lua costs). It explains Put's server-x-baseline in
// BenchmarkPutFloor2KiB. Compare the parts' server-ns/op within one run.
func BenchmarkPutScriptParts2KiB(b *testing.B) {
	_, c, _, rawKey := benchClients(b)
	ctx := context.Background()
	blob := make([]byte, 2048)
	rand.Read(blob)
	for i, p := range scriptParts {
		b.Run(p.name, func(b *testing.B) {
			s := goredis.NewScript(p.src)
			key := rawKey + "-part" + strconv.Itoa(i)
			args := []any{blob, "1-0123456789abcdef"}
			if strings.Contains(p.name, "unused") {
				args = append(args, blob)
			}
			if err := s.Run(ctx, c, []string{key}, args...).Err(); err != nil {
				b.Fatal(err)
			}
			u0 := evalshaUsec(b, c)
			b.ResetTimer()
			for range b.N {
				if err := s.Run(ctx, c, []string{key}, args...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			us := (evalshaUsec(b, c) - u0) / float64(b.N)
			b.ReportMetric(us*1000, "server-ns/op")
		})
	}
}
