package session_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/benchmarks"
	"github.com/sessionvault/sessionvault/session"
)

// benchManager returns a Manager with auto-save over a file-backed vault
// in a temporary folder, holding the axiomtrade-rs golden session with
// both auth cookies.
func benchManager(b *testing.B, st session.Store, opts ...session.Option) *session.Manager {
	b.Helper()
	ctx := context.Background()
	m, err := session.NewManager(ctx, st, opts...)
	if err != nil {
		b.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/session-after-login.json")
	if err != nil {
		b.Fatal(err)
	}
	s, err := session.ParseSession(golden)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	c := s.Cookies.Clone()
	defer c.Destroy()
	c.AuthAccessToken = ptrSecret(s.Tokens.AccessToken.Clone())
	c.AuthRefreshToken = ptrSecret(s.Tokens.RefreshToken.Clone())
	if err := m.CreateSession(ctx, s.Tokens, nil, &c); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(ctx) })
	return m
}

func ptrSecret(s session.Secret) *session.Secret { return &s }

// BenchmarkUpdateTokens compares UpdateTokens with auto-save on a
// file-backed vault (encode, seal, versioned atomic write) against the
// physical baseline: a raw durable write of as many bytes as the sealed
// session (temp file, write, fsync, rename, folder fsync), in the same
// folder. A third series times the vault Store's Seal of the same
// plaintext alone, to separate the Manager's cost from storage's, and a
// fourth the store lock a refresh or a conflicted write takes
// (Store.Lock and Unlock: a flock on the file backend). The series are interleaved, one of each per
// iteration in rotating order, so drift in the disk affects all; ns/op
// and the ratio are of medians.
func BenchmarkUpdateTokens(b *testing.B) {
	ctx := context.Background()
	tv := newVault(b)
	m := benchManager(b, tv.v.Store("bench"))
	blob, _, err := tv.b.Get(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	rawPath := filepath.Join(filepath.Dir(tv.dir), "raw")
	if err := os.Mkdir(rawPath, 0o700); err != nil {
		b.Fatal(err)
	}
	raw, err := benchmarks.OpenRawDir(rawPath)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	payload := make([]byte, len(blob))
	exp := time.Now().Add(time.Hour)
	toks := [2]session.AuthTokens{
		session.NewAuthTokens([]byte("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoiYWNjZXNzIn0.FAKEsigB"), []byte("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoicmVmcmVzaCJ9.FAKEsigS"), &exp),
		session.NewAuthTokens([]byte("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoiYWNjZXNzIn0.FAKEsigC"), []byte("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoicmVmcmVzaCJ9.FAKEsigT"), &exp),
	}
	defer toks[0].Destroy()
	defer toks[1].Destroy()
	// A third series: the Store's Seal of a same-sized plaintext, alone,
	// to tell the Manager's share (encode, bookkeeping) from storage's.
	snap, err := m.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	plain, err := snap.MarshalPlaintext()
	snap.Destroy()
	if err != nil {
		b.Fatal(err)
	}
	defer clear(plain)
	st := tv.v.Store("bench-store")
	var stVer backends.Version
	var ours, base, store, locks benchmarks.Histogram
	lockCycle := func() {
		t0 := time.Now()
		lk, err := st.Lock(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := lk.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
		locks.Record(time.Since(t0))
	}
	seal := func() {
		t0 := time.Now()
		v, err := st.Seal(ctx, plain, stVer)
		if err != nil {
			b.Fatal(err)
		}
		stVer = v
		store.Record(time.Since(t0))
	}
	b.ResetTimer()
	rawWrite := func() {
		t0 := time.Now()
		if err := raw.WriteDurable("session", payload); err != nil {
			b.Fatal(err)
		}
		base.Record(time.Since(t0))
	}
	update := func(i int) {
		t0 := time.Now()
		if err := m.UpdateTokens(ctx, toks[i%2]); err != nil {
			b.Fatal(err)
		}
		ours.Record(time.Since(t0))
	}
	for i := 0; i < b.N; i++ {
		// Rotate the order, so that none always follows another's fsync.
		switch i % 3 {
		case 0:
			rawWrite()
			update(i)
			seal()
		case 1:
			update(i)
			seal()
			rawWrite()
		default:
			seal()
			rawWrite()
			update(i)
		}
		lockCycle()
	}
	b.StopTimer()
	mo, mb := ours.Quantile(0.5), base.Quantile(0.5)
	b.ReportMetric(float64(mo.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(mb.Nanoseconds()), "baseline-ns/op")
	b.ReportMetric(float64(mo)/float64(mb), "x-baseline")
	b.ReportMetric(float64(store.Quantile(0.5).Nanoseconds()), "store-seal-ns/op")
	b.ReportMetric(float64(locks.Quantile(0.5).Nanoseconds()), "lock-ns/op")
	b.ReportMetric(float64(len(blob)), "sealed-bytes")
}

// BenchmarkMarkAPICall times single MarkAPICall calls (auto-save on, a
// file-backed vault) against a baseline doing the least any in-memory
// update must: lock a mutex, read the clock, store it, unlock, and signal
// a writer. Each call is timed on its own; medians are reported.
func BenchmarkMarkAPICall(b *testing.B) {
	tv := newVault(b)
	m := benchManager(b, tv.v.Store("bench"))
	var (
		mu   sync.Mutex
		last time.Time
		kick = make(chan struct{}, 1)
	)
	baseline := func() {
		now := time.Now()
		mu.Lock()
		last = now
		mu.Unlock()
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var ours, base benchmarks.Histogram
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		baseline()
		t1 := time.Now()
		m.MarkAPICall("api.axiom.trade")
		t2 := time.Now()
		base.Record(t1.Sub(t0))
		ours.Record(t2.Sub(t1))
	}
	b.StopTimer()
	_ = last
	mo, mb := ours.Quantile(0.5), base.Quantile(0.5)
	b.ReportMetric(float64(mo.Nanoseconds()), "ns/op") // the median, not the mean
	b.ReportMetric(float64(mo.Nanoseconds()), "median-ns")
	b.ReportMetric(float64(ours.Quantile(0.99).Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(mb.Nanoseconds()), "baseline-median-ns")
	b.ReportMetric(float64(mo)/float64(max(mb, 1)), "x-baseline")
}

// countingStore wraps a real Store and records when each Seal started.
type countingStore struct {
	session.Store
	mu    sync.Mutex
	seals []time.Time
	n     atomic.Int64
}

func (c *countingStore) Seal(ctx context.Context, pt []byte, v backends.Version) (backends.Version, error) {
	c.mu.Lock()
	c.seals = append(c.seals, time.Now())
	c.mu.Unlock()
	c.n.Add(1)
	return c.Store.Seal(ctx, pt, v)
}

// maxInWindow is the largest number of times in any window of length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// BenchmarkMarkAPICallStorm makes 100k MarkAPICall calls per iteration as
// fast as one goroutine can, with auto-save on a file-backed vault and a
// 10 ms flush interval, and counts the durable writes they cause. The
// baseline is one write per call (the seed's mark-and-save): the report
// gives calls per write and the most writes that started within any one
// interval, which must stay 1.
func BenchmarkMarkAPICallStorm(b *testing.B) {
	const calls = 100_000
	const interval = 10 * time.Millisecond
	tv := newVault(b)
	cs := &countingStore{Store: tv.v.Store("bench")}
	m := benchManager(b, cs, session.WithMetadataFlushInterval(interval))
	time.Sleep(2 * interval)
	cs.mu.Lock()
	cs.seals = nil
	cs.mu.Unlock()
	cs.n.Store(0)
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for range calls {
			m.MarkAPICall("api.axiom.trade")
		}
		elapsed += time.Since(t0)
	}
	b.StopTimer()
	if err := m.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	cs.mu.Lock()
	seals := append([]time.Time(nil), cs.seals...)
	cs.mu.Unlock()
	writes := len(seals)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*calls), "ns/op")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/storm")
	b.ReportMetric(float64(b.N*calls)/float64(max(writes, 1)), "calls/write")
	b.ReportMetric(float64(elapsed)/float64(b.N)/float64(interval), "intervals/storm")
	// Every write of the storm but Close's final flush.
	if len(seals) > 0 {
		seals = seals[:len(seals)-1]
	}
	b.ReportMetric(float64(maxInWindow(seals, interval)), "max-writes/interval")
}
