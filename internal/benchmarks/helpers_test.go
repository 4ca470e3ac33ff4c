package benchmarks

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/session"
)

func TestSessionJSONSizes(t *testing.T) {
	sizes := []int{MinSessionSize, 100, 512, 1000, 1024, 1200, RealisticSize, 2049, 3000, 4096, 64 << 10, 1 << 20}
	for _, size := range sizes {
		b := SessionJSON(size)
		if len(b) != size {
			t.Fatalf("SessionJSON(%d): %d bytes", size, len(b))
		}
		var v map[string]json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("SessionJSON(%d) is not a JSON object: %v\n%s", size, err, describe(b))
		}
		_, full := v["tokens"]
		_, tokensOnly := v["access_token"]
		if full == tokensOnly {
			t.Fatalf("SessionJSON(%d): neither the full nor the tokens-only shape: %s", size, describe(b))
		}
		if !bytes.Equal(b, SessionJSON(size)) {
			t.Fatalf("SessionJSON(%d) differs between calls", size)
		}
	}
	// The realistic session has the full shape, both auth cookies and a
	// Turnkey session: what a bot stores after login.
	var s sessionJSON
	if err := json.Unmarshal(SessionJSON(RealisticSize), &s); err != nil {
		t.Fatal(err)
	}
	if s.Cookies.AuthAccessToken == nil || s.Cookies.AuthRefreshToken == nil || s.TurnkeySession == nil {
		t.Fatalf("realistic session lacks cookies or Turnkey session")
	}
	if n := len(s.Tokens.AccessToken); n < 300 || n > maxTokenLen {
		t.Fatalf("realistic access token is %d characters; want a JWT-sized 300..%d", n, maxTokenLen)
	}
}

// The generated sessions are what the session package reads: both shapes,
// every size.
func TestSessionJSONParses(t *testing.T) {
	for _, size := range append([]int{MinSessionSize, RealisticSize}, sizes...) {
		s, err := session.ParseSession(SessionJSON(size))
		if err != nil {
			t.Fatalf("SessionJSON(%d): %v", size, err)
		}
		if size >= RealisticSize && (s.TurnkeySession == nil || !s.Cookies.HasAuthCookies()) {
			t.Fatalf("SessionJSON(%d) parsed without its Turnkey session or auth cookies", size)
		}
	}
}

func TestSessionJSONPanicsBelowMinimum(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	SessionJSON(MinSessionSize - 1)
}

func TestRawDirWriteDurable(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenRawDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, want := range [][]byte{SessionJSON(512), SessionJSON(RealisticSize), {}} {
		if err := d.WriteDurable("s", want); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := d.ReadFile("s")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("write %d: read back %d bytes, want %d", i, len(got), len(want))
		}
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(dir, "s"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
		}
	}
	// No temp file stays behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "s" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("folder holds %v, want only s", names)
	}
}

func TestRawDirWriteDurableFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenRawDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.WriteDurable("s", []byte("old")); err != nil {
		t.Fatal(err)
	}
	// A folder where the file should go makes the rename fail.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteDurable("d", []byte("new")); err == nil {
		t.Fatal("rename over a non-empty folder succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("folder holds %d entries after a failed write, want 2 (s, d)", len(ents))
	}
}

func TestOpenRawDirRefusesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := OpenRawDir(p); err == nil {
		d.Close()
		t.Fatal("OpenRawDir accepted a regular file")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	// 1..100000 ns: every quantile within 1/subBuckets of the exact value.
	var all []time.Duration
	for v := time.Duration(1); v <= 100000; v++ {
		h.Record(v)
		all = append(all, v)
	}
	slices.Sort(all)
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[min(int(q*float64(len(all))), len(all)-1)]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subBuckets+1 {
			t.Errorf("q%.3f = %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != 100000 || h.Count() != 100000 {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
	var m Histogram
	m.Record(time.Hour)
	m.Merge(&h)
	if m.Count() != 100001 || m.Max() != time.Hour || m.Quantile(1) != time.Hour {
		t.Fatalf("merge: count %d max %v", m.Count(), m.Max())
	}
	// Buckets are contiguous and each value lands in the bucket whose
	// upper bound is the first one at or above it.
	for v := uint64(0); v < 1<<16; v++ {
		i := bucket(v)
		if upper(i) < v || (i > 0 && upper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, upper(i-1)+1, upper(i))
		}
	}
	if bucket(1<<63) >= len(h.counts) {
		t.Fatal("largest duration overflows the buckets")
	}
}

// race reports ours as ns/op, each baseline's mean, and both ratios; and
// it shuffles the order, so that every contender runs first sometimes.
func TestRace(t *testing.T) {
	first := map[string]int{}
	var calls []string
	mk := func(name string, d time.Duration) contender {
		return contender{name: name, op: func(i int) error {
			calls = append(calls, name)
			time.Sleep(d)
			return nil
		}}
	}
	res := testing.Benchmark(func(b *testing.B) {
		calls = calls[:0]
		race(b, true, mk("slow", 2*time.Millisecond), mk("fast", time.Millisecond), mk("other", time.Millisecond))
		for i := 3; i+3 <= len(calls); i += 3 { // after the warm-up round
			first[calls[i]]++
		}
	})
	if res.N < 2 {
		t.Fatalf("ran %d iterations", res.N)
	}
	for _, name := range []string{"slow", "fast", "other"} {
		if first[name] == 0 {
			t.Errorf("%s never ran first: %v", name, first)
		}
	}
	for _, unit := range []string{"x-fast", "x-fast-med", "x-other", "x-other-med"} {
		// 2 ms over 1 ms, with room for a busy machine's sleeps.
		if r := res.Extra[unit]; r < 1.2 || r > 3 {
			t.Errorf("%s = %.3f, want about 2", unit, r)
		}
	}
	if ns := res.Extra["ns/op"]; ns < 1.9e6 || ns > 10e6 {
		t.Errorf("ns/op = %.0f, want about 2e6 (ours alone)", ns)
	}
	if ns := res.Extra["fast-ns/op"]; ns < 0.9e6 || ns > 5e6 {
		t.Errorf("fast-ns/op = %.0f, want about 1e6", ns)
	}
}

// The authenticated-read baselines read back exactly the payload, at
// every size (one message, a partial last chunk, whole chunks), and fail
// on a sealed file that was changed.
func TestAuthReadBaselines(t *testing.T) {
	for _, n := range []int{MinSessionSize, RealisticSize, authChunk, authChunk + 1, 3*authChunk - 7} {
		payload := SessionJSON(n)
		for _, c := range []contender{authRead(t, payload), authReadParallel(t, payload)} {
			for i := range 2 {
				if err := c.op(i); err != nil {
					t.Fatalf("%s, %d bytes: %v", c.name, n, err)
				}
			}
		}
	}
	payload := SessionJSON(2*authChunk + 5)
	for name, mk := range map[string]func(testing.TB, []byte, string) contender{"readopen": authReadAt, "readopen-par": authReadParallelAt} {
		p := filepath.Join(t.TempDir(), "sealed")
		c := mk(t, payload, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.op(1); err == nil {
			t.Errorf("%s: a changed sealed file read without error", name)
		}
	}
}
