//go:build race

package session

// raceEnabled: the race detector slows every memory access 5 to 10 times,
// so latency bounds of tests that measure the refresh engine in real time
// are looser under it (see latencyBound).
const raceEnabled = true
