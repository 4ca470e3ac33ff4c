package keychain

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

// durableWriter is the baseline: the raw durable write of the same 32
// bytes to a file: temp file (O_EXCL, 0600), write, fsync, close, rename,
// fsync of the folder (its descriptor held open).
type durableWriter struct {
	dir *os.File
	n   int
}

func newDurableWriter(b *testing.B) *durableWriter {
	path := b.TempDir()
	dir, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dir.Close() })
	return &durableWriter{dir: dir}
}

func (w *durableWriter) write(b *testing.B, data []byte) {
	w.n++
	tmp := filepath.Join(w.dir.Name(), ".kek.tmp-"+strconv.Itoa(w.n))
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
	if err := os.Rename(tmp, filepath.Join(w.dir.Name(), "kek")); err != nil {
		b.Fatal(err)
	}
	if err := w.dir.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkKeyFetch: GetKey of a 32-byte KEK through go-keyring from the
// real Secret Service (gnome-keyring on a private D-Bus; run under
// scripts/with-keyring), against the raw durable write of the same 32
// bytes to a file, timed in alternation.
func BenchmarkKeyFetch(b *testing.B) {
	requireSecretService(b)
	ctx := b.Context()
	k := newTestKeychain(b)
	account := uniq() + "/bench"
	key := make([]byte, 32)
	rand.Read(key)
	if err := k.PutKey(ctx, account, key); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = k.DeleteKey(context.Background(), account) })
	w := newDurableWriter(b)
	var p pairTimer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.time(&p.base, func() { w.write(b, key) })
		p.time(&p.cand, func() {
			got, err := k.GetKey(ctx, account)
			if err != nil || !bytes.Equal(got, key) {
				b.Fatalf("GetKey: %v", err)
			}
		})
	}
	p.report(b)
}
