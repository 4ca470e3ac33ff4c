package backendtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
	"github.com/sessionvault/sessionvault/backends/memory"
)

// The suite must fail a backend that breaks the contract. Each broken
// backend below breaks one rule; TestSuiteCatches runs the suite on it in
// a child process (a failing subtest cannot be contained in this one) and
// checks that the child fails, in the subtest that checks the rule.

// wrap embeds a working backend; each broken type overrides one method.
type wrap struct{ *memory.Backend }

// ignoresVersion stores unconditionally.
type ignoresVersion struct{ wrap }

func (b ignoresVersion) Put(ctx context.Context, name string, blob []byte, _ backends.Version) (backends.Version, error) {
	return b.Backend.Put(ctx, name, blob, backends.Any)
}

// racyCAS checks the version and then writes, non-atomically.
type racyCAS struct{ wrap }

func (b racyCAS) Put(ctx context.Context, name string, blob []byte, ifv backends.Version) (backends.Version, error) {
	if ifv != backends.Any {
		_, v, err := b.Backend.Get(ctx, name)
		if err == nil && v != ifv || err != nil && ifv != backends.Absent {
			return b.Backend.Put(ctx, name, blob, ifv) // reports the conflict
		}
	}
	time.Sleep(50 * time.Microsecond)
	return b.Backend.Put(ctx, name, blob, backends.Any)
}

// listsHeader lists HeaderName.
type listsHeader struct{ wrap }

func (b listsHeader) List(ctx context.Context) ([]string, error) {
	names, err := b.Backend.List(ctx)
	if _, _, gerr := b.Backend.Get(ctx, backends.HeaderName); gerr == nil {
		names = append([]string{backends.HeaderName}, names...)
	}
	return names, err
}

// ignoresContext runs every Get without its context.
type ignoresContext struct{ wrap }

func (b ignoresContext) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	return b.Backend.Get(context.Background(), name)
}

// escapesNames maps bad names to good ones instead of refusing them.
type escapesNames struct{ wrap }

func (b escapesNames) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	if backends.ValidateName(name) != nil {
		name = "escaped"
	}
	return b.Backend.Get(ctx, name)
}

// sharesSlices returns the same slice to every caller.
type sharesSlices struct {
	wrap
	mu    sync.Mutex
	cache map[string][]byte
}

func (b *sharesSlices) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	blob, v, err := b.Backend.Get(ctx, name)
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.cache[name+string(v)]; ok {
		return c, v, err
	}
	b.cache[name+string(v)] = blob
	return blob, v, err
}

// deleteAbsent treats the zero Version as Any in Delete.
type deleteAbsent struct{ wrap }

func (b deleteAbsent) Delete(ctx context.Context, name string, ifv backends.Version) error {
	if ifv == backends.Absent {
		ifv = backends.Any
	}
	return b.Backend.Delete(ctx, name, ifv)
}

var broken = map[string]struct {
	new      func() backends.Backend
	failures []string // subtests that must fail
}{
	"ignoresVersion": {func() backends.Backend { return ignoresVersion{wrap{memory.New()}} }, []string{"PutAbsent", "PutStale"}},
	"racyCAS":        {func() backends.Backend { return racyCAS{wrap{memory.New()}} }, []string{"ConcurrentIncrements"}},
	"listsHeader":    {func() backends.Backend { return listsHeader{wrap{memory.New()}} }, []string{"HeaderName", "List"}},
	"ignoresContext": {func() backends.Backend { return ignoresContext{wrap{memory.New()}} }, []string{"ContextCanceled", "ContextExpired"}},
	"escapesNames":   {func() backends.Backend { return escapesNames{wrap{memory.New()}} }, []string{"BadNames"}},
	"sharesSlices": {func() backends.Backend {
		return &sharesSlices{wrap: wrap{memory.New()}, cache: map[string][]byte{}}
	}, []string{"Copies"}},
	"deleteAbsent": {func() backends.Backend { return deleteAbsent{wrap{memory.New()}} }, []string{"DeleteStale"}},
}

const brokenEnv = "BACKENDTEST_BROKEN"

// TestBrokenChild runs the suite on the broken backend named by
// $BACKENDTEST_BROKEN; it is skipped otherwise.
func TestBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as a child of TestSuiteCatches")
	}
	backendtest.Run(t, func(t *testing.T) backends.Backend { return broken[name].new() },
		backendtest.Config{Writers: 8, Increments: 30})
}

func TestSuiteCatches(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, bb := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestBrokenChild$", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a backend that breaks the contract:\n%s", out)
			}
			for _, sub := range bb.failures {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenChild/"+sub+" ") {
					t.Errorf("subtest %s did not fail:\n%s", sub, out)
				}
			}
		})
	}
}

// The working backend passes, as a control.
func TestControl(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return wrap{memory.New()} }, backendtest.Config{})
}
