//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/benchmarks"
	"github.com/sessionvault/sessionvault/kdf"
)

// runQuiet runs vaultctl in this process with its output discarded.
func runQuiet(tb testing.TB, args ...string) {
	tb.Helper()
	var stderr strings.Builder
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
		getenv: func(string) string { return "" }}
	if code := a.run(context.Background(), args); code != 0 {
		tb.Fatalf("vaultctl %v: exit %d: %s", args, code, stderr.String())
	}
}

// TestOneKDFRunPerCommand: status, verify and rotate-key unlock the vault
// once (one argon2id run) however many sessions it holds.
func TestOneKDFRunPerCommand(t *testing.T) {
	dir, pass := makeVault(t, 0)
	sealSessions(t, dir, "crash-test-passphrase", 40, 0)
	for _, cmd := range [][]string{{"status"}, {"--json", "status"}, {"verify"}, {"rotate-key"}, {"gc", "--dry-run"}, {"show", "s0001"}} {
		before := kdf.Derivations()
		runQuiet(t, append([]string{"--dir", dir, "--passphrase-file", pass}, cmd...)...)
		if n := kdf.Derivations() - before; n != 1 {
			t.Errorf("vaultctl %v over 40 sessions ran argon2id %d times, want 1", cmd, n)
		}
	}
}

// benchVault makes a vault of n sessions of about 2 KiB each, with the
// default (production) argon2id parameters, and returns its folder, the
// passphrase file and the sizes of the sealed files.
func benchVault(b *testing.B, n int) (dir, pass string, sizes []int) {
	b.Helper()
	p := kdf.Default
	dir, pass = makeVault(b, 0, "--kdf-time", fmt.Sprint(p.Time), "--kdf-memory", fmt.Sprint(p.MemoryKiB/1024), "--kdf-threads", fmt.Sprint(p.Threads))
	sealSessions(b, dir, "crash-test-passphrase", n, benchmarks.RealisticSize)
	entries, err := os.ReadDir(filepath.Join(dir, "sessions"))
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		sizes = append(sizes, int(fi.Size()))
	}
	if len(sizes) != n {
		b.Fatalf("%d session files, want %d", len(sizes), n)
	}
	return dir, pass, sizes
}

// BenchmarkStatus1000 runs "vaultctl status" over 1,000 sessions of about
// 2 KiB (production argon2id parameters). Baseline, in the same run: one
// argon2id derivation with the same parameters plus a plain os.ReadFile
// of each sealed file, the least any status must do.
func BenchmarkStatus1000(b *testing.B) {
	const n = 1000
	dir, pass, _ := benchVault(b, n)
	names, _ := filepath.Glob(filepath.Join(dir, "sessions", "*.sealed"))
	salt := make([]byte, kdf.SaltSize)
	var statusTime, baseTime time.Duration
	var kdfRuns uint64
	var ratios []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		start := time.Now()
		k, err := kdf.Derive([]byte("crash-test-passphrase"), salt, kdf.Default)
		if err != nil {
			b.Fatal(err)
		}
		k.Destroy()
		for _, name := range names {
			if _, err := os.ReadFile(name); err != nil {
				b.Fatal(err)
			}
		}
		base := time.Since(start)
		baseTime += base
		before := kdf.Derivations()
		b.StartTimer()

		start = time.Now()
		runQuiet(b, "--dir", dir, "--passphrase-file", pass, "status")
		st := time.Since(start)
		statusTime += st
		kdfRuns += kdf.Derivations() - before
		ratios = append(ratios, float64(st)/float64(base))
	}
	b.ReportMetric(float64(kdfRuns)/float64(b.N), "kdf-runs/op")
	b.ReportMetric(float64(statusTime.Milliseconds())/float64(b.N), "status-ms")
	b.ReportMetric(float64(baseTime.Milliseconds())/float64(b.N), "baseline-ms")
	b.ReportMetric(median(ratios), "x-baseline")
}

// BenchmarkRotateKey1000 runs "vaultctl rotate-key" over 1,000 sessions
// of about 2 KiB (production argon2id parameters). Baseline, in the same
// run and on the same file system: 1,000 raw durable writes (temp file,
// write, fsync, close, rename, folder fsync) of the same sizes.
func BenchmarkRotateKey1000(b *testing.B) {
	const n = 1000
	dir, pass, sizes := benchVault(b, n)
	rawPath := filepath.Join(filepath.Dir(dir), "raw")
	if err := os.Mkdir(rawPath, 0o700); err != nil {
		b.Fatal(err)
	}
	raw, err := benchmarks.OpenRawDir(rawPath)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	blobs := make([][]byte, n)
	for i, sz := range sizes {
		blobs[i] = make([]byte, sz)
		for j := range blobs[i] {
			blobs[i][j] = byte(i + j)
		}
	}
	var rotTime, baseTime time.Duration
	var kdfRuns uint64
	var ratios []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		start := time.Now()
		for i, blob := range blobs {
			if err := raw.WriteDurable(fmt.Sprintf("s%04d", i), blob); err != nil {
				b.Fatal(err)
			}
		}
		base := time.Since(start)
		baseTime += base
		before := kdf.Derivations()
		b.StartTimer()

		start = time.Now()
		runQuiet(b, "--dir", dir, "--passphrase-file", pass, "rotate-key")
		rot := time.Since(start)
		rotTime += rot
		kdfRuns += kdf.Derivations() - before
		ratios = append(ratios, float64(rot)/float64(base))
	}
	b.ReportMetric(float64(kdfRuns)/float64(b.N), "kdf-runs/op")
	b.ReportMetric(float64(rotTime.Milliseconds())/float64(b.N), "rotate-ms")
	b.ReportMetric(float64(baseTime.Milliseconds())/float64(b.N), "raw-writes-ms")
	// The median of the per-iteration ratios: each pairs a rotation with
	// the raw writes just before it, so a burst of disk load from another
	// process skews one pair, not the figure.
	b.ReportMetric(median(ratios), "x-baseline")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
