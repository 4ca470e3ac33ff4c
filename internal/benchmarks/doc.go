// Package benchmarks holds sessionvault's comparative and scaling
// benchmarks: the same job (store a session durably and read it back) done by
// this module and by what a user would pick instead, each baseline timed in
// the same run as our code so that the reported ratios (b.ReportMetric units
// starting with "x-") do not depend on how busy the machine was.
//
// The non-test files hold what the benchmarks share and what their own tests
// check: a generator of realistic session JSON of any size, the physical
// baseline (a raw durable write), and a latency histogram.
//
// Run them with scripts/bench; docs/BENCHMARKS.md has the figures.
package benchmarks
