package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	kr "github.com/99designs/keyring"
)

// pairTimer times a candidate and its baseline in alternation within one
// benchmark, so that both see the same disk, cache and machine load, and
// reports each median and their ratio.
type pairTimer struct{ base, cand []time.Duration }

func (p *pairTimer) time(dst *[]time.Duration, f func()) {
	t0 := time.Now()
	f()
	*dst = append(*dst, time.Since(t0))
}

func (p *pairTimer) report(b *testing.B) {
	med := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2])
	}
	sum := func(d []time.Duration) (t float64) {
		for _, x := range d {
			t += float64(x)
		}
		return t
	}
	b.ReportMetric(0, "ns/op") // the pair's wall time mixes both; each is reported instead
	b.ReportMetric(med(p.base), "baseline-median-ns")
	b.ReportMetric(med(p.cand), "median-ns")
	b.ReportMetric(sum(p.cand)/sum(p.base), "x-baseline")
	b.ReportMetric(med(p.cand)/med(p.base), "x-baseline-median")
}

// durableWrite is the baseline: the raw durable write of data to a file
// in dir: temp file (O_EXCL, 0600), write, fsync, close, rename, fsync of
// the folder (its descriptor held open).
func durableWrite(b *testing.B, dir *os.File, n int, data []byte) {
	tmp := filepath.Join(dir.Name(), ".kek.tmp-"+strconv.Itoa(n))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir.Name(), "kek")); err != nil {
		b.Fatal(err)
	}
	if err := dir.Sync(); err != nil {
		b.Fatal(err)
	}
}

// benchKeyFetch times GetKey of a 32-byte KEK from k against the raw
// durable write of the same 32 bytes, in alternation.
func benchKeyFetch(b *testing.B, k *Keyring) {
	ctx := b.Context()
	account := uniq() + "/bench"
	key := make([]byte, 32)
	rand.Read(key)
	if err := k.PutKey(ctx, account, key); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = k.DeleteKey(context.Background(), account) })
	dir, err := os.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	var p pairTimer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.time(&p.base, func() { durableWrite(b, dir, i, key) })
		p.time(&p.cand, func() {
			got, err := k.GetKey(ctx, account)
			if err != nil || !bytes.Equal(got, key) {
				b.Fatalf("GetKey: %v", err)
			}
		})
	}
	p.report(b)
}

// BenchmarkKeyFetch: GetKey of a 32-byte KEK through 99designs/keyring
// from the real kernel keyring (keyctl) and the real Secret Service
// (under scripts/with-keyring), each against the raw durable write of the
// same 32 bytes.
func BenchmarkKeyFetch(b *testing.B) {
	b.Run("keyctl", func(b *testing.B) {
		requireKeyCtl(b)
		name := "sessionvault-" + uniq()
		k, err := Open(b.Context(), Config{AllowedBackends: []BackendType{KeyCtlBackend}, KeyCtlScope: "user", ServiceName: name})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unlinkKeyring(b, name) })
		benchKeyFetch(b, k)
	})
	b.Run("secret-service", func(b *testing.B) {
		requireSecretService(b)
		k, err := Open(b.Context(), secretServiceConfig())
		if err != nil {
			b.Fatal(err)
		}
		benchKeyFetch(b, k)
	})
}

// BenchmarkKeyFetchOverhead: what this package adds to a key fetch (the
// goroutine that carries the deadline, the framing, the copies), measured
// on the fastest real store, the kernel keyring: GetKey against
// 99designs' own Get of the same entry, in alternation.
func BenchmarkKeyFetchOverhead(b *testing.B) {
	requireKeyCtl(b)
	name := "sessionvault-" + uniq()
	cfg := Config{AllowedBackends: []BackendType{KeyCtlBackend}, KeyCtlScope: "user", ServiceName: name}
	k, err := Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unlinkKeyring(b, name) })
	raw, err := kr.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	account := uniq() + "/bench"
	key := make([]byte, 32)
	rand.Read(key)
	if err := k.PutKey(ctx, account, key); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = k.DeleteKey(context.Background(), account) })
	var p pairTimer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.time(&p.base, func() {
			if _, err := raw.Get(account); err != nil {
				b.Fatal(err)
			}
		})
		p.time(&p.cand, func() {
			if _, err := k.GetKey(ctx, account); err != nil {
				b.Fatal(err)
			}
		})
	}
	p.report(b)
}
