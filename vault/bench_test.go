package vault

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// interleave runs ours and base for b.N iterations each, alternating in
// short chunks (and alternating which goes first) so that load changes on
// a shared machine hit both alike. It returns the median over chunks of
// ours' time divided by base's, and the total time of each.
func interleave(b *testing.B, ours, base func()) (ratio float64, tOurs, tBase time.Duration) {
	const chunk = 32
	var ratios []float64
	for done, i := 0, 0; done < b.N; done, i = done+chunk, i+1 {
		n := min(chunk, b.N-done)
		run := func(f func()) time.Duration {
			start := time.Now()
			for range n {
				f()
			}
			return time.Since(start)
		}
		var o, bs time.Duration
		if i%2 == 0 {
			bs, o = run(base), run(ours)
		} else {
			o, bs = run(ours), run(base)
		}
		tOurs += o
		tBase += bs
		ratios = append(ratios, float64(o)/float64(max(bs, 1)))
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2], tOurs, tBase
}

// BenchmarkSealSession2KiB compares SealSession on a 2 KiB session with
// the bare x/crypto XChaCha20-Poly1305 Seal of the same bytes, in the same
// run, output allocated by each:
//
//   - x-bare-seal: baseline is Seal alone (fixed nonce);
//   - x-seal-nonce: baseline is a random nonce from crypto/rand plus Seal,
//     the least any correct use of the AEAD does.
//
// ns/op and allocs/op cover all four loops; ns/seal and ns/bare-seal are
// SealSession and the bare Seal alone. BenchmarkSealSessionAllocs gives
// SealSession's own allocations.
//
//	go test -run '^$' -bench SealSession2KiB -benchmem ./vault
func BenchmarkSealSession2KiB(b *testing.B) {
	v, _ := newVault(b)
	plain := make([]byte, 2048)
	rand.Read(plain)
	aead, _ := chacha20poly1305.NewX(make([]byte, 32))
	nonce := make([]byte, 24)
	name := "trader-1"
	ours := func() {
		if _, err := v.SealSession(name, plain); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() { _ = aead.Seal(nil, nonce, plain, nil) }
	withNonce := func() {
		rand.Read(nonce)
		_ = aead.Seal(nil, nonce, plain, nil)
	}
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	rBare, tOurs1, tBare := interleave(b, ours, bare)
	rNonce, tOurs2, _ := interleave(b, ours, withNonce)
	b.ReportMetric(rBare, "x-bare-seal")
	b.ReportMetric(rNonce, "x-seal-nonce")
	b.ReportMetric(float64(tOurs1+tOurs2)/float64(2*b.N), "ns/seal")
	b.ReportMetric(float64(tBare)/float64(b.N), "ns/bare-seal")
}

// BenchmarkSealSessionAllocs measures SealSession alone, for allocs/op:
// one allocation, the output.
func BenchmarkSealSessionAllocs(b *testing.B) {
	v, _ := newVault(b)
	plain := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.SealSession("trader-1", plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSession2KiB compares OpenSession (in place) with the bare
// x/crypto Open of the same blob, in place too.
func BenchmarkOpenSession2KiB(b *testing.B) {
	v, _ := newVault(b)
	plain := make([]byte, 2048)
	blob, err := v.SealSession("trader-1", plain)
	if err != nil {
		b.Fatal(err)
	}
	work := make([]byte, len(blob))
	aead, _ := chacha20poly1305.NewX(make([]byte, 32))
	nonce := make([]byte, 24)
	sealed := aead.Seal(nil, nonce, plain, nil)
	work2 := make([]byte, len(sealed))
	ctx := context.Background()
	ours := func() {
		copy(work, blob)
		if _, err := v.OpenSession(ctx, "trader-1", work); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() {
		copy(work2, sealed)
		if _, err := aead.Open(work2[:0], nonce, work2, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	ratio, tOurs, _ := interleave(b, ours, bare)
	b.ReportMetric(ratio, "x-baseline")
	b.ReportMetric(float64(tOurs)/float64(b.N), "ns/open")
}

// BenchmarkRotateKeyWorkers times RotateKey over 300 sessions of 2 KiB
// on a real file backend as it runs (resealWorkers writers at once)
// against the same rotation with one writer, the serial re-seal it
// replaced, alternating which runs first. Every write is the same atomic
// compare-and-set Put either way: x-serial below 1 comes only from fsyncs
// in flight together (the file system commits them in one journal
// transaction).
//
//	go test -run '^$' -bench RotateKeyWorkers -benchtime 5x ./vault
func BenchmarkRotateKeyWorkers(b *testing.B) {
	const n = 300
	v, _ := newFileVault(b, nil)
	plain := make([]byte, 2048)
	rand.Read(plain)
	for i := range n {
		seal(b, v, fmt.Sprintf("s%03d", i), string(plain))
	}
	ctx := context.Background()
	var ratios []float64
	var tOurs, tSerial time.Duration
	rotate := func(workers int) time.Duration {
		t0 := time.Now()
		if err := v.rotateKey(ctx, nil, workers); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for i := 0; b.Loop(); i++ {
		var o, s time.Duration
		if i%2 == 0 {
			s, o = rotate(1), rotate(resealWorkers)
		} else {
			o, s = rotate(resealWorkers), rotate(1)
		}
		tOurs += o
		tSerial += s
		ratios = append(ratios, float64(o)/float64(s))
	}
	slices.Sort(ratios)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(tOurs.Milliseconds())/float64(len(ratios)), "ms/rotation")
	b.ReportMetric(float64(tSerial.Milliseconds())/float64(len(ratios)), "serial-ms/rotation")
	b.ReportMetric(ratios[len(ratios)/2], "x-serial")
	b.ReportMetric(float64(resealWorkers), "workers")
}

// BenchmarkChunked1MiB races, on a 1 MiB session, the chunked envelope
// (version 3, chunks sealed and opened on up to GOMAXPROCS goroutines)
// against one x/crypto XChaCha20-Poly1305 message of the same bytes
// (opened in place; sealed with a random nonce into a new buffer), what
// a version 2 envelope costs, interleaved in the same run:
// x-single-open and x-single-seal are the chunked envelope's time over
// the single message's (below 1: the chunks' parallelism pays; on one
// core about 1).
//
//	go test -run '^$' -bench Chunked1MiB ./vault
func BenchmarkChunked1MiB(b *testing.B) {
	v, _ := newVault(b)
	plain := make([]byte, MaxPlaintextSize)
	rand.Read(plain)
	blob, err := v.SealSession("big", plain)
	if err != nil {
		b.Fatal(err)
	}
	work := make([]byte, len(blob))
	aead, _ := chacha20poly1305.NewX(make([]byte, 32))
	nonce := make([]byte, 24)
	sealed := aead.Seal(nil, nonce, plain, nil)
	work2 := make([]byte, len(sealed))
	ctx := context.Background()
	b.SetBytes(int64(len(plain)))
	b.Run("open", func(b *testing.B) {
		ratio, tOurs, _ := interleave(b, func() {
			copy(work, blob)
			if _, err := v.OpenSession(ctx, "big", work); err != nil {
				b.Fatal(err)
			}
		}, func() {
			copy(work2, sealed)
			if _, err := aead.Open(work2[:0], nonce, work2, nil); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(ratio, "x-single-open")
		b.ReportMetric(float64(tOurs)/float64(b.N), "ns/open")
	})
	b.Run("seal", func(b *testing.B) {
		ratio, tOurs, _ := interleave(b, func() {
			if _, err := v.SealSession("big", plain); err != nil {
				b.Fatal(err)
			}
		}, func() {
			out := make([]byte, 0, envelopeV2HeaderSize+len(plain)+tagSize)
			rand.Read(nonce)
			aead.Seal(out, nonce, plain, nil)
		})
		b.ReportMetric(ratio, "x-single-seal")
		b.ReportMetric(float64(tOurs)/float64(b.N), "ns/seal")
	})
}
