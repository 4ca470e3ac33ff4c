//go:build linux

package powerloss

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// Available reports why a power-loss file system cannot be mounted here
// ("" when it can): it needs root and /dev/fuse.
func Available() string {
	if os.Geteuid() != 0 {
		return "not root (mounting FUSE without fusermount needs root)"
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "no /dev/fuse"
	}
	return ""
}

// Mount mounts a power-loss file system for the test t, over an empty
// backing folder in t.TempDir(), and unmounts it when t ends. Where FUSE
// is not available (not root, no /dev/fuse) it skips t, except under CI
// (the rule of package servicetest), where it fails t.
func Mount(t testing.TB, opts Options) *FS {
	t.Helper()
	if why := Available(); why != "" {
		if servicetest.Required() {
			t.Fatalf("powerloss: FUSE is required (CI=true or SESSIONVAULT_REQUIRE_SERVICES=1) but unavailable: %s", why)
		}
		t.Skipf("powerloss: %s: run as root on a machine with /dev/fuse", why)
	}
	tmp := t.TempDir()
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := New(mnt, filepath.Join(tmp, "backing"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("powerloss: %v", err)
		}
	})
	return f
}

// A Workload is what Run cuts the power under: a child process working
// on the mount, and the checks that follow every cut.
type Workload struct {
	// Name names the figures ("powercut/saves").
	Name string
	// Start starts the child of one round, typically with
	// reexec.Start. The file system is mounted and holds the state
	// left by the previous cut.
	Start func(round int) (*reexec.Child, error)
	// Ready is the prefix of the report line that says the child has
	// begun the work worth cutting (its vault is open); a cut by time
	// counts from it. "" counts from the start.
	Ready string
	// Checks run after every cut, in order, on the remounted file
	// system. The first error ends the run (counted as
	// "failed_checks" and logged): what follows a broken state proves
	// nothing.
	Checks []Check
}

// A Check inspects the file system after a cut. It may count into
// r.Figures. Other teams' checks (a retired-credential scan) plug in
// here.
type Check struct {
	Name string
	Fn   func(ctx context.Context, r *Round) error
}

// Round is one cut, as the checks see it.
type Round struct {
	// Index counts the rounds from 0.
	Index int
	// Mode is "syncs" (the cut froze the N-th fsync of the round) or
	// "time" (the cut came a random time after Ready).
	Mode string
	// Lines are the report lines the child sent before it died.
	Lines []string
	// Cut is what the cut discarded.
	Cut CutReport
	// Figures is the run's figure set.
	Figures *figures.Set
	// FS is the file system, remounted.
	FS *FS
}

// Acked returns the largest N of the child's "ack N" lines, or def
// when there is none.
func (r *Round) Acked(def int) int {
	for _, l := range r.Lines {
		if s, ok := strings.CutPrefix(l, "ack "); ok {
			if n, err := strconv.Atoi(s); err == nil {
				def = max(def, n)
			}
		}
	}
	return def
}

// Has reports whether the child sent a line starting with prefix.
func (r *Round) Has(prefix string) bool {
	for _, l := range r.Lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// Config sizes a run.
type Config struct {
	// Cuts is the number of power cuts.
	Cuts int
	// MaxSyncs bounds the cut by count: the round freezes its N-th
	// fsync, N uniform in [1, MaxSyncs].
	MaxSyncs int
	// Window bounds the cut by time: uniform in [0, Window) after
	// Ready.
	Window time.Duration
	// Seed seeds the schedule (0: random; logged either way).
	Seed uint64
}

// Run cuts the power cfg.Cuts times under w: each round starts the
// child, cuts (half the rounds at a random fsync count, half at a random
// time), kills the child with SIGKILL, discards the volatile state with
// Cut, and runs the checks. It returns the figures: cuts, cuts_at_sync,
// cuts_by_time, child_errors, files_reverted, files_torn, dirs_reverted,
// failed_checks, and whatever the checks add. It fails t only when the
// harness itself cannot run (a child that does not start, a Cut that
// fails); what the checks find is in the figures, so that self-tests can
// run it on broken writers.
func Run(t testing.TB, f *FS, w Workload, cfg Config) *figures.Set {
	t.Helper()
	set := figures.New(w.Name)
	set.Declare("cuts", "cuts_at_sync", "cuts_by_time", "child_errors", "files_reverted", "files_torn", "dirs_reverted", "failed_checks")
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("%s: power-cut schedule seed %d", w.Name, seed)
	set.Note("seed", strconv.FormatUint(seed, 10))
	set.Note("torn", strconv.FormatBool(f.opts.Torn))
	rng := rand.New(rand.NewPCG(seed, seed^0xc07))
	ctx := context.Background()
	for i := 0; i < cfg.Cuts; i++ {
		r := &Round{Index: i, Figures: set, FS: f, Mode: "time"}
		var frozen <-chan struct{}
		if cfg.MaxSyncs > 0 && (cfg.Window <= 0 || rng.IntN(2) == 0) {
			r.Mode = "syncs"
			frozen = f.FreezeAtSync(1 + rng.Int64N(int64(cfg.MaxSyncs)))
		}
		delay := time.Duration(0)
		if cfg.Window > 0 {
			delay = time.Duration(rng.Int64N(int64(cfg.Window)))
		}
		child, err := w.Start(i)
		if err != nil {
			t.Fatalf("%s: round %d: %v", w.Name, i, err)
		}
		exited := make(chan struct{})
		go func() { child.Wait(); close(exited) }()
		wctx, cancel := context.WithTimeout(ctx, childWait)
		if r.Mode == "syncs" {
			select {
			case <-frozen:
			case <-exited:
			case <-wctx.Done():
			}
			set.Inc("cuts_at_sync")
		} else {
			if w.Ready != "" {
				child.WaitFor(wctx, w.Ready) // a child that dies first ends the wait
			}
			select {
			case <-time.After(delay):
			case <-exited:
			}
			set.Inc("cuts_by_time")
		}
		cancel()
		child.Kill()
		werr := child.Wait()
		f.FreezeAtSync(0)
		if werr != nil && !reexec.Killed(werr) {
			set.Inc("child_errors")
			t.Logf("%s: round %d: child failed: %v\n%s", w.Name, i, werr, child.Stderr())
		}
		rep, err := f.Cut()
		if err != nil {
			t.Fatalf("%s: round %d: %v", w.Name, i, err)
		}
		set.Inc("cuts")
		set.Add("files_reverted", int64(rep.Files))
		set.Add("files_torn", int64(rep.TornFiles))
		set.Add("dirs_reverted", int64(rep.Dirs))
		if rep.Files > 0 {
			t.Logf("%s: round %d: %d files in the durable namespace had volatile content (%d torn): %q", w.Name, i, rep.Files, rep.TornFiles, rep.Reverted)
		}
		if rep.Busy {
			set.Inc("busy_unmounts")
		}
		r.Lines = child.Lines()
		r.Cut = rep
		for _, c := range w.Checks {
			if err := c.Fn(ctx, r); err != nil {
				set.Inc("failed_checks")
				t.Logf("%s: round %d (%s cut, %d syncs): check %s: %v", w.Name, i, r.Mode, rep.Syncs, c.Name, err)
				return set
			}
		}
	}
	return set
}
