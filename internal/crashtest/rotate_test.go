package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// The passwd harness switches the vault between these two passphrases.
const (
	passA = "crash-harness-passphrase"
	passB = "crash-harness-other-passphrase"
)

func manyName(i int) string { return fmt.Sprintf("s%04d", i) }

func manyToken(i int) string { return fmt.Sprintf("tok-%d-%s", i, strings.Repeat("y", i*31%700)) }

func openWith(ctx context.Context, dir, pass string) (*vault.Vault, error) {
	v, _, err := openWithBackend(ctx, dir, pass)
	return v, err
}

// openWithBackend is openWith that also returns the backend, for callers
// that must close it (a power cut needs every file on the mount closed).
func openWithBackend(ctx context.Context, dir, pass string) (*vault.Vault, backends.Backend, error) {
	b, err := openLoc(dir)
	if err != nil {
		return nil, nil, err
	}
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(pass)), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return v, b, nil
}

// createMany makes a vault of n sessions, session i holding manyToken(i).
func createMany(t *testing.T, dir string, n int) {
	t.Helper()
	ctx := context.Background()
	b, err := openLoc(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Create(ctx, b, vaultOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range n {
		m, err := session.NewManager(ctx, v.Store(manyName(i)), session.WithAutoSave(true))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.CreateSession(ctx, session.NewAuthTokens([]byte(manyToken(i)), []byte("r"), nil), nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkMany opens the vault with whichever of passes works and opens every
// session. It returns the passphrase that worked, the number of sessions
// that did not open or held the wrong content, and an error when the vault
// itself does not open.
func checkMany(ctx context.Context, dir string, n int, passes ...string) (pass string, bad int, err error) {
	var (
		v *vault.Vault
		b backends.Backend
	)
	for _, p := range passes {
		v, b, err = openWithBackend(ctx, dir, p)
		if err == nil {
			pass = p
			break
		}
	}
	if v == nil {
		return "", n, err
	}
	defer b.Close()
	defer v.Close()
	bad, err = checkManyIn(ctx, v, n)
	return pass, bad, err
}

// checkManyIn opens every session of the open vault v, as checkMany does.
func checkManyIn(ctx context.Context, v *vault.Vault, n int) (bad int, err error) {
	names, err := v.Sessions(ctx)
	if err != nil {
		return n, err
	}
	if len(names) != n {
		return n, fmt.Errorf("%d sessions listed, want %d", len(names), n)
	}
	for i := range n {
		plain, _, err := v.Store(manyName(i)).Open(ctx)
		if err != nil {
			bad++
			continue
		}
		var ps plainSession
		if json.Unmarshal(plain, &ps) != nil || ps.Tokens.AccessToken != manyToken(i) {
			bad++
		}
	}
	return bad, nil
}

// rotateChild rotates the data key of the vault at args[0], reporting
// progress, then "done".
func rotateChild(args []string) error {
	ctx := context.Background()
	v, err := openWith(ctx, args[0], passA)
	if err != nil {
		return err
	}
	reexec.Report("ready")
	if err := v.RotateKey(ctx, func(done, total int) { reexec.Report("progress %d/%d", done, total) }); err != nil {
		reexec.Report("error rotate: %v", err)
		return err
	}
	reexec.Report("done")
	return v.Close()
}

// passwdChild changes the passphrase of the vault at args[0] from the one
// in args[1] to the one in args[2] (both "A" or "B").
func passwdChild(args []string) error {
	ctx := context.Background()
	pick := map[string]string{"A": passA, "B": passB}
	v, err := openWith(ctx, args[0], pick[args[1]])
	if err != nil {
		return err
	}
	reexec.Report("ready")
	if err := v.ChangePassphrase(ctx, []byte(pick[args[2]]), testKDF); err != nil {
		reexec.Report("error passwd: %v", err)
		return err
	}
	reexec.Report("done")
	return v.Close()
}

// runToEnd runs a child role to completion and returns how long its work
// took, from "ready" (vault open) to "done".
func runToEnd(t *testing.T, role string, args ...string) time.Duration {
	t.Helper()
	c, err := reexec.Start(role, reexec.Options{}, args...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.WaitFor(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.WaitFor(ctx, "done"); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if err := c.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", role, err, c.Stderr())
	}
	return d
}

// killAt starts a child, kills it d after it reported "ready" (its vault
// open), and reports whether it had finished ("done") first.
func killAt(t *testing.T, d time.Duration, role string, args ...string) (finished bool, lines []string) {
	t.Helper()
	c, err := reexec.Start(role, reexec.Options{}, args...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	if _, err := c.WaitFor(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(d)
	c.Kill()
	werr := c.Wait()
	lines = c.Lines()
	for _, l := range lines {
		if l == "done" {
			finished = true
		}
		if strings.HasPrefix(l, "error ") {
			t.Errorf("%s child: %s", role, l)
		}
	}
	if !finished && !reexec.Killed(werr) {
		t.Errorf("%s child exited by itself without finishing: %v\n%s", role, werr, c.Stderr())
	}
	return finished, lines
}

func rotateKills() int {
	n := figures.Scale(*flagKills, 12, 100)
	if testing.Short() && *flagKills == 0 {
		n = 5
	}
	return n
}

func rotateSessions() int { return figures.Scale(0, 60, 300) }

// TestCrashRotateKey kills rotations of a vault of many sessions at random
// moments: after every kill every session opens with its content, and a
// rerun completes the rotation.
func TestCrashRotateKey(t *testing.T) {
	f := runRotate(t, "rotate", rotateSessions(), rotateKills())
	f.Report(t)
	for _, k := range []string{"unreadable_vaults", "unreadable_sessions", "rerun_failed"} {
		if f.Get(k) != 0 {
			t.Errorf("%s = %d, want 0", k, f.Get(k))
		}
	}
	if f.Get("killed_mid_rotation") == 0 {
		t.Errorf("no kill landed in the middle of a rotation: the harness tested nothing")
	}
}

// TestCrashHarnessCatchesNaiveRotation runs the rotate harness on a
// rotation that swaps in a new header before it re-seals the sessions
// (the obvious, unsafe way): a kill in between leaves sessions that no
// header opens, and the harness must see them.
func TestCrashHarnessCatchesNaiveRotation(t *testing.T) {
	f := runRotate(t, "naiverotate", 40, 30)
	f.Report(t)
	if f.Get("unreadable_sessions")+f.Get("unreadable_vaults") == 0 {
		t.Fatal("the harness did not detect a non-resumable rotation")
	}
}

// naiveRotateChild rotates by building a new vault (new id, new key) next
// to the old one and moving its files in: the header first, then the
// sessions one by one.
func naiveRotateChild(args []string) error {
	ctx := context.Background()
	dir := args[0]
	v, err := openWith(ctx, dir, passA)
	if err != nil {
		return err
	}
	reexec.Report("ready")
	names, err := v.Sessions(ctx)
	if err != nil {
		return err
	}
	next := dir + ".next"
	os.RemoveAll(next)
	nb, err := file.New(next)
	if err != nil {
		return err
	}
	nv, err := vault.Create(ctx, nb, vaultOptions()...)
	if err != nil {
		return err
	}
	for _, name := range names {
		plain, _, err := v.Store(name).Open(ctx)
		if err != nil {
			return err
		}
		if _, err := nv.Store(name).Seal(ctx, plain, backends.Absent); err != nil {
			return err
		}
	}
	if err := os.Rename(filepath.Join(next, "vault.hdr"), filepath.Join(dir, "vault.hdr")); err != nil {
		return err
	}
	for i, name := range names {
		if err := os.Rename(filepath.Join(next, "sessions", name+".sealed"), filepath.Join(dir, "sessions", name+".sealed")); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond) // a slow disk: the window a kill must find
		reexec.Report("progress %d/%d", i+1, len(names))
	}
	reexec.Report("done")
	return nil
}

// runRotate is the rotation harness, on the rotation done by role.
func runRotate(t *testing.T, role string, n, kills int) *figures.Set {
	f := figures.New("crash/" + role)
	f.Declare("sessions", "kills", "killed_mid_rotation", "unreadable_vaults", "unreadable_sessions", "rerun_failed")
	f.Add("sessions", int64(n))
	rng := newRNG(t, f)
	dir := filepath.Join(t.TempDir(), "vault")
	createMany(t, dir, n)
	ctx := context.Background()

	// One uninterrupted rotation measures how long one takes, so that the
	// kills spread over all of it.
	full := runToEnd(t, role, dir)
	t.Logf("one rotation of %d sessions: %v", n, full)
	genBefore := generations(t, dir)

	for k := 0; k < kills; k++ {
		d := time.Duration(rng.Int64N(int64(full) * 11 / 10))
		finished, lines := killAt(t, d, role, dir)
		f.Inc("kills")
		if !finished && progressed(lines) {
			f.Inc("killed_mid_rotation")
		}
		_, bad, err := checkMany(ctx, dir, n, passA)
		if err != nil {
			f.Inc("unreadable_vaults")
			t.Logf("kill %d after %v: vault does not open: %v", k, d, err)
			return f
		}
		f.Add("unreadable_sessions", int64(bad))
		if bad > 0 {
			t.Logf("kill %d after %v: %d sessions do not open", k, d, bad)
			return f
		}
	}
	// The rerun completes: every session opens and one generation is left.
	runToEnd(t, role, dir)
	if _, bad, err := checkMany(ctx, dir, n, passA); err != nil || bad > 0 {
		f.Inc("rerun_failed")
		t.Logf("after the rerun: %d bad sessions, %v", bad, err)
	}
	genAfter := generations(t, dir)
	if role == "rotate" && (len(genAfter) != 1 || genAfter[0] == genBefore[0]) {
		f.Inc("rerun_failed")
		t.Logf("generations before %v, after the rerun %v: want one new generation", genBefore, genAfter)
	}
	return f
}

func progressed(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "progress ") {
			return true
		}
	}
	return false
}

// TestCrashPasswd kills passphrase changes at random moments: after every
// kill the vault opens with the old or the new passphrase, every session
// opens, and a rerun completes the change. Kills are timed from the
// child's "ready" (its vault open, ChangePassphrase next). Most of a
// change is its purge, after the new header is in place, so random kills
// mostly land after the switch: every other kill is drawn below the
// shortest delay seen so far that landed after it, and the test fails
// unless some kills landed mid-change (the child killed before the new
// passphrase took over).
func TestCrashPasswd(t *testing.T) {
	n, kills := rotateSessions(), rotateKills()
	f := figures.New("crash/passwd")
	f.Declare("sessions", "kills", "finished_first", "switched", "killed_before_switch", "killed_after_switch", "unreadable_vaults", "unreadable_sessions")
	f.Add("sessions", int64(n))
	rng := newRNG(t, f)
	dir := filepath.Join(t.TempDir(), "vault")
	createMany(t, dir, n)
	ctx := context.Background()

	cur, other := "A", "B"
	full := runToEnd(t, "passwd", dir, cur, other)
	cur, other = other, cur
	window := full * 11 / 10
	beforeSwitch := window // shortest delay so far that landed after the switch
	for k := 0; k < kills*2; k++ {
		w := window
		if k%2 == 1 {
			w = beforeSwitch
		}
		d := time.Duration(rng.Int64N(int64(w) + 1))
		finished, _ := killAt(t, d, "passwd", dir, cur, other)
		if finished {
			f.Inc("finished_first")
		}
		f.Inc("kills")
		pass, bad, err := checkMany(ctx, dir, n, passA, passB)
		if err != nil {
			f.Inc("unreadable_vaults")
			t.Fatalf("kill %d after %v: vault opens with neither passphrase: %v", k, d, err)
		}
		f.Add("unreadable_sessions", int64(bad))
		if bad > 0 {
			t.Errorf("kill %d: %d sessions do not open", k, bad)
		}
		now := "A"
		if pass == passB {
			now = "B"
		}
		switched := now != cur
		if switched {
			f.Inc("switched")
			cur, other = other, cur
			beforeSwitch = min(beforeSwitch, d)
		}
		if !finished {
			if switched {
				f.Inc("killed_after_switch")
			} else {
				f.Inc("killed_before_switch")
			}
		}
	}
	runToEnd(t, "passwd", dir, cur, other)
	want := map[string]string{"A": passA, "B": passB}[other]
	if pass, bad, err := checkMany(ctx, dir, n, want); err != nil || bad > 0 || pass != want {
		t.Errorf("after the rerun: %v, %d bad", err, bad)
	}
	f.Report(t)
	if f.Get("killed_before_switch") == 0 {
		t.Fatalf("no kill landed mid-change (before the new passphrase took over): %s", f)
	}
	// Random kills mostly land before or after the one header write (it
	// takes a millisecond or two); TestCrashPasswdAtEveryStep kills inside
	// it, at every step.
	if f.Get("killed_after_switch") == 0 {
		t.Logf("no kill landed in the purge after the header write (%s)", f)
	}
}

// generations returns the vault's live key generations.
func generations(t *testing.T, dir string) []uint32 {
	t.Helper()
	v, err := openWith(context.Background(), dir, passA)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	return v.Info().Generations
}
