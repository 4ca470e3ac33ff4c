package benchmarks

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// contender is one way of doing the job a benchmark measures.
type contender struct {
	name string
	// op does the job once; i counts the calls, from 0.
	op func(i int) error
}

// result is what race measured for one contender.
type result struct {
	name  string
	total time.Duration
	hist  Histogram
}

func (r *result) mean(n int) float64 { return float64(r.total.Nanoseconds()) / float64(n) }

// race runs every contender once per iteration, b.N iterations, rotating
// which one goes first so that none always runs right after another (a cold
// page cache, a folder whose journal was just flushed). Because all of them
// share each moment of the run, noise from other processes on the machine
// hits them alike, and the ratios it reports hold even when ns/op wobbles.
//
// The first contender is ours: its mean becomes ns/op. Every other contender
// is reported as "<name>-ns/op" and, when ratios is true, as "x-<name>", our
// mean divided by its mean (below 1: we are faster), and "x-<name>-p50", our
// median over its median, which a burst of load from another process moves
// less than the means. B/op and allocs/op of a
// race cover all contenders together; per-contender benchmarks report those.
func race(b *testing.B, ratios bool, cs ...contender) []*result {
	b.Helper()
	res := make([]*result, len(cs))
	for i, c := range cs {
		res[i] = &result{name: c.name}
	}
	// One untimed round: create files, fill caches, open connections.
	for _, c := range cs {
		if err := c.op(0); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range cs {
			j := (i + k) % len(cs)
			start := time.Now()
			if err := cs[j].op(i + 1); err != nil {
				b.Fatalf("%s: %v", cs[j].name, err)
			}
			d := time.Since(start)
			res[j].total += d
			res[j].hist.Record(d)
		}
	}
	b.StopTimer()
	ours := res[0].mean(b.N)
	b.ReportMetric(ours, "ns/op")
	for _, r := range res[1:] {
		m := r.mean(b.N)
		b.ReportMetric(m, metricName(r.name)+"-ns/op")
		if ratios && m > 0 {
			b.ReportMetric(ours/m, "x-"+metricName(r.name))
			if p := r.hist.Quantile(0.5); p > 0 {
				b.ReportMetric(float64(res[0].hist.Quantile(0.5))/float64(p), "x-"+metricName(r.name)+"-p50")
			}
		}
	}
	return res
}

// metricName makes name usable as a benchmark unit (no spaces).
func metricName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return '_'
		}
		return r
	}, name)
}

// reportQuantiles reports the median and 99th percentile of h under
// prefix (e.g. "p50-ns" for prefix "").
func reportQuantiles(b *testing.B, prefix string, h *Histogram) {
	b.ReportMetric(float64(h.Quantile(0.50).Nanoseconds()), prefix+"p50-ns")
	b.ReportMetric(float64(h.Quantile(0.99).Nanoseconds()), prefix+"p99-ns")
}

// sizeName names a sub-benchmark by byte size: "size=2KiB".
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("size=%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("size=%dKiB", n>>10)
	}
	return fmt.Sprintf("size=%dB", n)
}
