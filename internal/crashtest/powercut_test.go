//go:build linux

package crashtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/powerloss"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/internal/retired"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// The power-cut harnesses run the crash workloads of this package on a
// powerloss file system: each round a child works on the mount, the
// power is cut at a random fsync count or a random time (the child is
// killed with SIGKILL, and everything not made durable by an fsync is
// discarded, torn 512-byte sectors included), and the parent checks the
// remounted vault.

// powerRoles are the child roles only the power-cut harnesses use.
var powerRoles = map[string]reexec.Func{
	"behindsaver": behindSaverChild,
	"recoverhdr":  recoverHeaderChild,
}

// PostCutChecks are run after every power cut of every power-cut
// workload, after the workload's own checks, with the vault's folder on
// the remounted file system and the passphrases that may open it. They
// are the hook for checks other harnesses bring (a retired-credential
// scan). A check must close everything it opens on the mount.
var PostCutChecks []func(ctx context.Context, dir string, passphrases []string, r *powerloss.Round) error

func powerCuts(bounded int) int {
	n := figures.Scale(*flagKills, bounded, 500)
	if testing.Short() && *flagKills == 0 {
		n = max(bounded/4, 3)
	}
	return n
}

func powerSeed() uint64 { return *flagSeed }

// postCut turns PostCutChecks into powerloss checks for one workload.
func postCut(dir string, passes ...string) []powerloss.Check {
	var cs []powerloss.Check
	for i, fn := range PostCutChecks {
		cs = append(cs, powerloss.Check{Name: "post-cut-" + strconv.Itoa(i), Fn: func(ctx context.Context, r *powerloss.Round) error {
			return fn(ctx, dir, passes, r)
		}})
	}
	return cs
}

// zeroFigures fails t for every goal-zero figure that is not zero.
func zeroFigures(t *testing.T, f *figures.Set, keys ...string) {
	t.Helper()
	for _, k := range append([]string{"failed_checks", "child_errors"}, keys...) {
		if f.Get(k) != 0 {
			t.Errorf("%s = %d, want 0", k, f.Get(k))
		}
	}
}

// mountVault mounts a torn-writes power-loss file system and returns it
// with the vault folder on it.
func mountVault(t *testing.T) (*powerloss.FS, string) {
	fs := powerloss.Mount(t, powerloss.Options{Torn: true, Seed: powerSeed()})
	return fs, filepath.Join(fs.Dir(), "vault")
}

// savesCheck is the check of the saves workloads: the vault and the
// session open, the session is exactly the state after some save S, no
// acknowledged save is lost, and the folder lists the session only.
func savesCheck(dir string, stored *int) powerloss.Check {
	return powerloss.Check{Name: "saves", Fn: func(ctx context.Context, r *powerloss.Round) error {
		acked := r.Acked(*stored)
		r.Figures.Add("acked_saves", int64(acked-*stored))
		seq, openErr, contentErr := storedSeq(ctx, "file", dir)
		switch {
		case openErr != nil:
			r.Figures.Inc("unreadable")
			return fmt.Errorf("vault or session does not open: %w", openErr)
		case contentErr != nil:
			r.Figures.Inc("torn")
			return contentErr
		case seq < acked:
			r.Figures.Add("lost_acked", int64(acked-seq))
			return fmt.Errorf("stored save %d, but save %d was acknowledged", seq, acked)
		case seq > acked+1:
			r.Figures.Inc("ahead")
			return fmt.Errorf("stored save %d, but only %d were attempted", seq, acked+1)
		}
		*stored = seq
		if err := checkFolder("file", dir); err != nil {
			r.Figures.Inc("folder_errors")
			return err
		}
		return nil
	}}
}

// runPowerSaves is the saves harness under power cuts, with the child
// role given (the saver, or the saver with write-behind metadata).
func runPowerSaves(t *testing.T, role, name string, cuts int) *figures.Set {
	fs, dir := mountVault(t)
	createVault(t, "file", dir)
	// Creating the vault must be durable on its own: cut right away.
	if _, err := fs.Cut(); err != nil {
		t.Fatal(err)
	}
	stored := 0
	if seq, openErr, contentErr := storedSeq(context.Background(), "file", dir); openErr != nil || contentErr != nil || seq != 0 {
		t.Fatalf("a vault just created does not survive a power cut: save %d, %v, %v", seq, openErr, contentErr)
	}
	w := powerloss.Workload{
		Name:  name,
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start(role, reexec.Options{}, "file", dir, strconv.Itoa(stored))
		},
		Checks: append([]powerloss.Check{savesCheck(dir, &stored)}, postCut(dir, testPassphrase)...),
	}
	f := powerloss.Run(t, fs, w, powerloss.Config{Cuts: cuts, MaxSyncs: 60, Window: 30 * time.Millisecond, Seed: powerSeed()})
	f.Declare("acked_saves", "unreadable", "lost_acked", "torn", "ahead", "folder_errors")
	f.Report(t)
	zeroFigures(t, f, "unreadable", "lost_acked", "torn", "ahead", "folder_errors")
	if got := f.Get("cuts"); got != int64(cuts) {
		t.Errorf("cuts = %d, want %d", got, cuts)
	}
	if f.Get("acked_saves") == 0 {
		t.Error("no save was acknowledged: the harness tested nothing")
	}
	return f
}

// TestPowerCutSaves cuts the power under a child saving sessions.
func TestPowerCutSaves(t *testing.T) {
	runPowerSaves(t, "saver", "powercut/saves", powerCuts(30))
}

// TestPowerCutWriteBehind cuts the power under a child that saves and
// marks API calls, so that the Manager's write-behind metadata flush
// writes the session between (and while) the saves run.
func TestPowerCutWriteBehind(t *testing.T) {
	f := runPowerSaves(t, "behindsaver", "powercut/write-behind", powerCuts(15))
	if f.Get("acked_saves") == 0 {
		t.Error("no save was acknowledged")
	}
}

// behindSaverChild is saverChild with a 1 ms metadata flush interval and
// a goroutine that marks API calls all the time: the write-behind writes
// race the saves.
func behindSaverChild(args []string) error {
	ctx := context.Background()
	kind, dir := args[0], args[1]
	s, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	b, err := openBackend(kind, dir)
	if err != nil {
		return err
	}
	v, err := vault.Open(ctx, b, vaultOptions()...)
	if err != nil {
		return err
	}
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true), session.WithMetadataFlushInterval(time.Millisecond))
	if err != nil {
		return err
	}
	reexec.Report("ready %d", s)
	go func() {
		for i := 0; ; i++ {
			m.MarkAPICall(fmt.Sprintf("api-%d.example", i%4))
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for {
		s++
		if err := save(ctx, m, s); err != nil {
			reexec.Report("error save %d: %v", s, err)
			return err
		}
		reexec.Report("ack %d", s)
	}
}

// manyCheck is the check of the many-session workloads: the vault opens
// with one of passes and every session opens with its content.
func manyCheck(dir string, n int, passes ...string) powerloss.Check {
	return powerloss.Check{Name: "sessions", Fn: func(ctx context.Context, r *powerloss.Round) error {
		_, bad, err := checkMany(ctx, dir, n, passes...)
		if err != nil {
			r.Figures.Inc("unreadable_vaults")
			return fmt.Errorf("vault does not open: %w", err)
		}
		r.Figures.Add("unreadable_sessions", int64(bad))
		if bad > 0 {
			return fmt.Errorf("%d sessions do not open", bad)
		}
		return nil
	}}
}

// timeRole runs role once to its end on the mount and returns how long
// its work took, so that cuts by time spread over all of it.
func timeRole(t *testing.T, role string, args ...string) time.Duration {
	d := runToEnd(t, role, args...)
	return d * 11 / 10
}

func powerSessions() int { return figures.Scale(0, 30, 60) }

// TestPowerCutRotateKey cuts the power under key rotations of a vault
// of many sessions; after every cut every session opens, and a rerun
// completes the rotation.
func TestPowerCutRotateKey(t *testing.T) {
	fs, dir := mountVault(t)
	n := powerSessions()
	createMany(t, dir, n)
	window := timeRole(t, "rotate", dir)
	w := powerloss.Workload{
		Name:  "powercut/rotate-key",
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start("rotate", reexec.Options{}, dir)
		},
		Checks: append([]powerloss.Check{manyCheck(dir, n, passA), {Name: "mid-rotation", Fn: func(ctx context.Context, r *powerloss.Round) error {
			if r.Has("progress ") && !r.Has("done") {
				r.Figures.Inc("cut_mid_rotation")
			}
			return nil
		}}}, postCut(dir, passA)...),
	}
	f := powerloss.Run(t, fs, w, powerloss.Config{Cuts: powerCuts(10), MaxSyncs: 4*n + 10, Window: window, Seed: powerSeed()})
	f.Declare("unreadable_vaults", "unreadable_sessions", "cut_mid_rotation", "rerun_failed")
	f.Add("sessions", int64(n))
	runToEnd(t, "rotate", dir)
	if _, bad, err := checkMany(context.Background(), dir, n, passA); err != nil || bad > 0 {
		f.Inc("rerun_failed")
		t.Logf("after the rerun: %d bad sessions, %v", bad, err)
	}
	f.Report(t)
	zeroFigures(t, f, "unreadable_vaults", "unreadable_sessions", "rerun_failed")
	if f.Get("cut_mid_rotation") == 0 && f.Get("cuts") >= 10 { // about half the cuts land mid-rotation
		t.Error("no cut landed in the middle of a rotation: the harness tested nothing")
	}
}

// TestPowerCutPasswd cuts the power under passphrase changes
// (passphrase to passphrase): after every cut the vault opens with the
// old or the new passphrase and every session opens.
func TestPowerCutPasswd(t *testing.T) {
	fs, dir := mountVault(t)
	n := powerSessions()
	createMany(t, dir, n)
	cur, other := "A", "B"
	window := timeRole(t, "passwd", dir, cur, other)
	cur, other = other, cur
	pick := map[string]string{"A": passA, "B": passB}
	w := powerloss.Workload{
		Name:  "powercut/passwd",
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start("passwd", reexec.Options{}, dir, cur, other)
		},
		Checks: append([]powerloss.Check{{Name: "passwd", Fn: func(ctx context.Context, r *powerloss.Round) error {
			pass, bad, err := checkMany(ctx, dir, n, passA, passB)
			if err != nil {
				r.Figures.Inc("unreadable_vaults")
				return fmt.Errorf("vault opens with neither passphrase: %w", err)
			}
			r.Figures.Add("unreadable_sessions", int64(bad))
			if bad > 0 {
				return fmt.Errorf("%d sessions do not open", bad)
			}
			if r.Has("done") && pass != pick[other] {
				r.Figures.Inc("lost_acked")
				return fmt.Errorf("the change to %s returned, but the vault opens with the old passphrase", other)
			}
			if pass == pick[other] {
				r.Figures.Inc("switched")
				// The change committed, and checkMany's open finished
				// its purge: nothing kept may open with the passphrase
				// it retired, at any offset of any file.
				rep, err := scanLoc(ctx, retired.New(retired.Credentials{Passphrases: [][]byte{[]byte(pick[cur])}}), dir)
				if err != nil {
					return fmt.Errorf("retired-credential scan: %w", err)
				}
				r.Figures.Inc("retired_scans")
				r.Figures.Add("retired_opened", int64(len(rep.Findings)))
				if len(rep.Findings) > 0 {
					return fmt.Errorf("after the change, the retired passphrase opens %v", rep.Findings)
				}
				cur, other = other, cur
			}
			return nil
		}}}, postCut(dir, passA, passB)...),
	}
	f := powerloss.Run(t, fs, w, powerloss.Config{Cuts: powerCuts(12), MaxSyncs: 8, Window: window, Seed: powerSeed()})
	f.Declare("unreadable_vaults", "unreadable_sessions", "lost_acked", "switched", "retired_scans", "retired_opened")
	f.Add("sessions", int64(n))
	f.Report(t)
	zeroFigures(t, f, "unreadable_vaults", "unreadable_sessions", "lost_acked", "retired_opened")
}

// TestPowerCutRecoverHeader cuts the power under header recovery (what
// 'vaultctl verify --recover' runs: vault.RecoverHeader, which restores
// the previous generation of a damaged header and writes it again):
// after every cut the vault opens, directly or through a recovery, and
// every session opens.
func TestPowerCutRecoverHeader(t *testing.T) {
	fs, dir := mountVault(t)
	n := powerSessions()
	createMany(t, dir, n)
	ctx := context.Background()
	// Each round starts from a damaged header whose previous generation
	// is sound.
	damage := func() error {
		v, b, err := openWithBackend(ctx, dir, passA)
		if err != nil {
			return err
		}
		defer b.Close()
		err = v.ChangePassphrase(ctx, []byte(passA), testKDF) // a new generation: the spare is sound
		v.Close()
		if err != nil {
			return err
		}
		// The header stored truncated, the sound one kept as its
		// previous generation. (Truncating the file itself would
		// destroy both generations: in file layout 2 one record file
		// holds them both, and damage the disk does to one slot reads
		// as the other.)
		hdr, ver, err := b.Get(ctx, backends.HeaderName)
		if err != nil {
			return err
		}
		_, err = b.Put(ctx, backends.HeaderName, hdr[:7], ver)
		return err
	}
	if err := damage(); err != nil {
		t.Fatal(err)
	}
	window := timeRole(t, "recoverhdr", dir)
	if err := damage(); err != nil {
		t.Fatal(err)
	}
	w := powerloss.Workload{
		Name:  "powercut/recover-header",
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start("recoverhdr", reexec.Options{}, dir)
		},
		Checks: append([]powerloss.Check{{Name: "recovered", Fn: func(ctx context.Context, r *powerloss.Round) error {
			_, bad, err := checkMany(ctx, dir, n, passA)
			if errors.Is(err, vault.ErrCorrupt) {
				if r.Has("done") {
					r.Figures.Inc("lost_acked")
					return fmt.Errorf("the recovery returned, but the header is damaged again: %w", err)
				}
				r.Figures.Inc("still_damaged")
				if err := recoverOnce(ctx, dir); err != nil {
					r.Figures.Inc("unrecoverable")
					return fmt.Errorf("the header no longer recovers: %w", err)
				}
				_, bad, err = checkMany(ctx, dir, n, passA)
			}
			if err != nil {
				r.Figures.Inc("unreadable_vaults")
				return fmt.Errorf("vault does not open: %w", err)
			}
			r.Figures.Add("unreadable_sessions", int64(bad))
			if bad > 0 {
				return fmt.Errorf("%d sessions do not open", bad)
			}
			return damage()
		}}}, postCut(dir, passA)...),
	}
	f := powerloss.Run(t, fs, w, powerloss.Config{Cuts: powerCuts(10), MaxSyncs: 6, Window: window, Seed: powerSeed()})
	f.Declare("unreadable_vaults", "unreadable_sessions", "unrecoverable", "lost_acked", "still_damaged")
	f.Add("sessions", int64(n))
	f.Report(t)
	zeroFigures(t, f, "unreadable_vaults", "unreadable_sessions", "unrecoverable", "lost_acked")
}

// recoverHeaderChild runs vault.RecoverHeader on the vault at args[0],
// then reports "done".
func recoverHeaderChild(args []string) error {
	ctx := context.Background()
	b, err := file.New(args[0])
	if err != nil {
		return err
	}
	defer b.Close()
	reexec.Report("ready")
	v, _, err := vault.RecoverHeader(ctx, b, false, vault.WithPassphrase([]byte(passA)), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		reexec.Report("error recover: %v", err)
		return err
	}
	v.Close()
	reexec.Report("done")
	return nil
}

func recoverOnce(ctx context.Context, dir string) error {
	b, err := file.New(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	v, _, err := vault.RecoverHeader(ctx, b, false, vault.WithPassphrase([]byte(passA)), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		return err
	}
	return v.Close()
}
