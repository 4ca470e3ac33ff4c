package session

import (
	"time"

	"github.com/sessionvault/sessionvault/internal/figures"
)

// hammerFigures counts what hammer measured into f: the goroutines, the
// run's length, the calls and failed calls, and the latency percentiles
// (p50 in µs, p99 and max in ms), so that the rows of SECURITY.md that
// quote a live test are the figures of a run.
func hammerFigures(f *figures.Set, goroutines int, run time.Duration, calls, failed int, lat []time.Duration) {
	f.Add("goroutines", int64(goroutines))
	f.Add("run_ms", run.Milliseconds())
	f.Add("calls", int64(calls))
	f.Add("failed", int64(failed))
	if lat != nil {
		f.Add("p50_us", percentile(lat, 0.5).Microseconds())
		f.Add("p99_ms", roundMs(percentile(lat, 0.99)))
		f.Add("max_ms", roundMs(percentile(lat, 1)))
	}
}

// roundMs is d in whole milliseconds, rounded to the nearest.
func roundMs(d time.Duration) int64 { return int64(d.Round(time.Millisecond) / time.Millisecond) }
