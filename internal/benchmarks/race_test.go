package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
	each  []time.Duration // per iteration, for paired ratios
}

func (r *result) mean(n int) float64 { return float64(r.total.Nanoseconds()) / float64(n) }

// race runs every contender once per iteration, b.N iterations, in an
// order shuffled anew for each iteration. Because all of them share each
// moment of the run, noise from other processes on the machine hits them
// alike, and the ratios it reports hold even when ns/op wobbles.
//
// The shuffle matters: an fsync on ext4 (data=ordered) commits the journal,
// and with it flushes the dirty data of every file written since the last
// commit, including the files that non-durable contenders (axiomtrade-rs,
// 99designs) wrote without fsync. In a fixed or rotating order the same
// contender would always follow them and pay for their writes; shuffled,
// every durable contender pays its share.
//
// The first contender is ours: its mean becomes ns/op. Every other contender
// is reported as "<name>-ns/op" and, when ratios is true, as "x-<name>", our
// mean divided by its mean (below 1: we are faster), and "x-<name>-med",
// the median over iterations of our time divided by its time in the same
// iteration. The paired median is the robust figure: a burst of load from
// another process inflates both times of the iterations it hits (the ratio
// barely moves) and the few iterations it hits unevenly are outliers the
// median ignores, whereas one 30 ms stall moves a mean of 1 ms by 3% per
// thousand iterations. B/op and allocs/op of a
// race cover all contenders together; per-contender benchmarks report those.
func race(b *testing.B, ratios bool, cs ...contender) []*result {
	b.Helper()
	res := make([]*result, len(cs))
	for i, c := range cs {
		res[i] = &result{name: c.name, each: make([]time.Duration, 0, b.N)}
	}
	// One untimed round: create files, fill caches, open connections.
	for _, c := range cs {
		if err := c.op(0); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
	}
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2)) // the same orders in every run
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
		for _, j := range order {
			start := time.Now()
			if err := cs[j].op(i + 1); err != nil {
				b.Fatalf("%s: %v", cs[j].name, err)
			}
			d := time.Since(start)
			res[j].total += d
			res[j].hist.Record(d)
			res[j].each = append(res[j].each, d)
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
			b.ReportMetric(pairedMedian(res[0].each, r.each), "x-"+metricName(r.name)+"-med")
		}
	}
	return res
}

// pairedMedian returns the median over i of a[i]/b[i].
func pairedMedian(a, b []time.Duration) float64 {
	r := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, float64(a[i])/float64(b[i]))
		}
	}
	if len(r) == 0 {
		return 0
	}
	slices.Sort(r)
	return r[len(r)/2]
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
