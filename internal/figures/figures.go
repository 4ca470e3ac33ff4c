// Package figures counts what the reliability and security harnesses measure
// (kills, inputs tried, inputs accepted, panics, copies found) and reports it
// in one greppable line per harness, so that the numbers quoted in
// SECURITY.md are the numbers a test run printed.
//
// A harness creates a Set, counts into it, and calls Report at the end:
//
//	f := figures.New("crash/saves")
//	f.Add("kills", 1)
//	...
//	f.Report(t) // logs "FIGURES crash/saves: kills=500 unreadable=0 lost=0"
//
// When the environment variable SESSIONVAULT_FIGURES names a file, Report
// also appends the line to it as a JSON object, so that one run of the whole
// suite leaves every figure in one place.
//
// That closes the loop with the documents: scripts/figures runs the
// figure-producing tests with SESSIONVAULT_FIGURES set, keeps the records
// with the run's commit, date and load in docs/figures/, and the regen
// command (internal/figures/regen, using Regenerate) rewrites every number
// of SECURITY.md and docs/BENCHMARKS.md that names its source; .ci/run
// checks that CI's own run still emits each one.
package figures

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

// EnvFile is the environment variable naming the file Report appends to.
const EnvFile = "SESSIONVAULT_FIGURES"

// Set is a named group of counters. It is safe for concurrent use. Keys keep
// the order in which they were first used.
type Set struct {
	name string

	mu     sync.Mutex
	order  []string
	counts map[string]int64
	notes  map[string]string
}

// New returns an empty Set called name (for example "crash/saves").
func New(name string) *Set {
	return &Set{name: name, counts: make(map[string]int64), notes: make(map[string]string)}
}

// Name is the name given to New.
func (s *Set) Name() string { return s.name }

// Declare makes keys appear in the report (as 0) even if nothing is ever
// added to them: a goal-zero figure such as "lost" must be printed as 0, not
// left out.
func (s *Set) Declare(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.touch(k)
	}
}

func (s *Set) touch(key string) {
	if _, ok := s.counts[key]; !ok {
		s.counts[key] = 0
		s.order = append(s.order, key)
	}
}

// Add adds n to the counter key.
func (s *Set) Add(key string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touch(key)
	s.counts[key] += n
}

// Inc adds 1 to the counter key.
func (s *Set) Inc(key string) { s.Add(key, 1) }

// Max raises the counter key to n if n is larger.
func (s *Set) Max(key string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touch(key)
	if n > s.counts[key] {
		s.counts[key] = n
	}
}

// Get returns the counter key (0 if never used).
func (s *Set) Get(key string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

// Note attaches a free-text value (a seed, a parameter) to the report.
// Notes must never hold secrets.
func (s *Set) Note(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes[key] = value
}

// String is the report line without the "FIGURES " prefix:
// "name: k1=v1 k2=v2 [note=value ...]".
func (s *Set) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString(s.name)
	b.WriteString(":")
	for _, k := range s.order {
		fmt.Fprintf(&b, " %s=%d", k, s.counts[k])
	}
	for _, k := range sortedKeys(s.notes) {
		fmt.Fprintf(&b, " %s=%s", k, s.notes[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Insertion sort: a handful of keys.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// Report logs the figures with t.Log and, when SESSIONVAULT_FIGURES is set,
// appends them to that file as one JSON line. A failure to write the file
// fails the test: a figure that was measured must not silently go missing.
func (s *Set) Report(t testing.TB) {
	t.Helper()
	t.Logf("FIGURES %s", s)
	path := os.Getenv(EnvFile)
	if path == "" {
		return
	}
	s.mu.Lock()
	rec := struct {
		Name   string            `json:"name"`
		Test   string            `json:"test"`
		Counts map[string]int64  `json:"counts"`
		Notes  map[string]string `json:"notes,omitempty"`
	}{s.name, t.Name(), s.counts, s.notes}
	line, err := json.Marshal(rec)
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("figures: %v", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("figures: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatalf("figures: %v", err)
	}
}

// Panic is a panic recovered by Protect: its value and the stack of the
// goroutine that panicked.
type Panic struct {
	Value any
	Stack []byte
}

// Error describes the panic, with the stack.
func (p *Panic) Error() string {
	return fmt.Sprintf("panic: %v\n%s", p.Value, p.Stack)
}

// Protect runs f and returns the panic it raised, or nil. Harnesses that
// feed hostile bytes to a parser run each input through Protect and count
// the non-nil results: a parser must never panic on outside bytes.
func Protect(f func()) (p *Panic) {
	defer func() {
		if v := recover(); v != nil {
			p = &Panic{Value: v, Stack: debug.Stack()}
		}
	}()
	f()
	return nil
}

// EnvLong is the environment variable that asks the harnesses for their
// full-size runs (SESSIONVAULT_LONG=1): 500 kills instead of 40, N=8 x
// K=200 writers instead of 4 x 25, and so on. The figures quoted in
// SECURITY.md come from those runs; the default, bounded runs are what CI
// executes on every change.
const EnvLong = "SESSIONVAULT_LONG"

// Long reports whether SESSIONVAULT_LONG=1 asks for the full-size runs.
func Long() bool { return os.Getenv(EnvLong) == "1" }

// Scale returns full when Long() and bounded otherwise, unless override is
// positive (a -flag the caller parsed), which wins.
func Scale(override, bounded, full int) int {
	switch {
	case override > 0:
		return override
	case Long():
		return full
	}
	return bounded
}
