package benchmarks

import (
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets (HdrHistogram style: 128
// linear sub-buckets per power of two, so any quantile is within 1/128, under
// 0.8%, of the true value: fine enough to compare two medians against a 1.10
// goal) without allocating on Record. The zero value is ready to
// use. It is not safe for concurrent use: give each goroutine its own and
// Merge them.
type Histogram struct {
	counts [64 * subBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
)

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest observation.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the upper bound of the bucket that holds the q-th
// quantile (0 <= q <= 1), capped at Max; 0 when h is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return min(time.Duration(upper(i)), h.max)
		}
	}
	return h.max
}

// bucket maps v to its index: values below 2*subBuckets map to themselves;
// above, the top subBits+1 significant bits select the bucket.
func bucket(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	exp := bits.Len64(v) - subBits - 1 // >= 1
	sub := (v >> uint(exp)) & (subBuckets - 1)
	return (exp+1)*subBuckets + int(sub)
}

// upper returns the largest value that maps to bucket i.
func upper(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	exp := i/subBuckets - 1
	sub := uint64(i % subBuckets)
	lo := (subBuckets + sub) << uint(exp)
	return lo + (1 << uint(exp)) - 1
}
