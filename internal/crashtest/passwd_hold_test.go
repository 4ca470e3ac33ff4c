package crashtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// The passwd harness with deterministic kill points. A random kill of a
// passphrase change mostly lands before or after the one header write
// (it takes a millisecond or two); so the child is held, by the file
// backend's step hook, right before each step of that write in turn,
// says so on its ack pipe ("at STEP"), and is killed there. Every kill
// therefore lands inside the change, at a known step, and the harness
// checks which passphrase opens the vault afterwards.

// holdAt returns a step hook that, at the hold-th step of the put of the
// header (0-based), reports "at STEP" and blocks until the process is
// killed. Other steps and names pass.
func holdAt(hold int) func(context.Context, file.StepInfo) error {
	seen := 0
	return func(ctx context.Context, s file.StepInfo) error {
		if s.Op != "put" || s.Name != backends.HeaderName {
			return nil
		}
		if seen == hold {
			reexec.Report("at %s", s.Step)
			select {} // held until killed
		}
		seen++
		return nil
	}
}

// passwdHoldChild changes the passphrase of the vault at args[0] from
// args[1] to args[2] ("A" or "B") on a file backend that holds the header
// write at step args[3]. It reports "done" if the write has fewer steps.
func passwdHoldChild(args []string) error {
	hold, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	return changeOn(args, func(dir string) (backends.Backend, error) {
		return file.New(dir, file.WithStepHook(holdAt(hold)))
	})
}

func changeOn(args []string, open func(dir string) (backends.Backend, error)) error {
	ctx := context.Background()
	pick := map[string]string{"A": passA, "B": passB}
	b, err := open(args[0])
	if err != nil {
		return err
	}
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(pick[args[1]])), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
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

// inPlaceHeader is a deliberately broken backend for the harness's
// self-test: the file backend, except that the header is rewritten in
// place (truncate, write half, write the rest), with a hold point at each
// of those steps, the way a naive passwd would overwrite its config file.
type inPlaceHeader struct {
	*file.Backend
	dir  string
	hold int
}

func (b *inPlaceHeader) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	if name != backends.HeaderName {
		return b.Backend.Put(ctx, name, blob, ifVersion)
	}
	step := 0
	at := func(label string) {
		if step == b.hold {
			reexec.Report("at %s", label)
			select {}
		}
		step++
	}
	at("truncate")
	f, err := os.OpenFile(filepath.Join(b.dir, "vault.hdr"), os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	at("write first half")
	if _, err := f.Write(blob[:len(blob)/2]); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	at("write second half")
	if _, err := f.Write(blob[len(blob)/2:]); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	_, v, err := b.Backend.Get(ctx, name)
	return v, err
}

func inPlacePasswdChild(args []string) error {
	hold, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	return changeOn(args, func(dir string) (backends.Backend, error) {
		fb, err := file.New(dir)
		if err != nil {
			return nil, err
		}
		return &inPlaceHeader{Backend: fb, dir: dir, hold: hold}, nil
	})
}

// runPasswdHolds is the harness: for hold = 0, 1, ... it runs the role's
// passphrase change held at that step, kills it there, and checks that
// the vault opens with the old or the new passphrase and that every
// session opens. It stops when the child finishes without reaching the
// hold point (every step has been tried) or the vault is lost.
func runPasswdHolds(t *testing.T, role string, n int) *figures.Set {
	t.Helper()
	f := figures.New("crash/" + role + "-held")
	f.Declare("sessions", "held_kills", "old_opens", "new_opens", "unreadable_vaults", "unreadable_sessions")
	f.Add("sessions", int64(n))
	dir := filepath.Join(t.TempDir(), "vault")
	createMany(t, dir, n)
	ctx := context.Background()
	cur, other := "A", "B"
	pass := map[string]string{"A": passA, "B": passB}
	for hold := 0; hold < 100; hold++ {
		c, err := reexec.Start(role, reexec.Options{}, dir, cur, other, strconv.Itoa(hold))
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		line, err := c.Next(wctx)
		for err == nil && line == "ready" {
			line, err = c.Next(wctx)
		}
		cancel()
		if err != nil {
			c.Kill()
			c.Wait()
			t.Fatalf("%s held at step %d: %v\n%s", role, hold, err, c.Stderr())
		}
		step, held := strings.CutPrefix(line, "at ")
		if !held {
			// The change ran to its end: every step has had its kill.
			if werr := c.Wait(); line != "done" || werr != nil {
				t.Fatalf("%s: %q, %v\n%s", role, line, werr, c.Stderr())
			}
			break
		}
		c.Kill()
		if werr := c.Wait(); !reexec.Killed(werr) {
			t.Fatalf("%s held at %q: not killed: %v", role, step, werr)
		}
		f.Inc("held_kills")
		got, bad, err := checkMany(ctx, dir, n, passA, passB)
		if err != nil {
			f.Inc("unreadable_vaults")
			t.Logf("killed before %q: the vault opens with neither passphrase: %v", step, err)
			return f
		}
		f.Add("unreadable_sessions", int64(bad))
		opens := "the old passphrase"
		if got == pass[other] {
			opens = "the new passphrase"
			if f.Get("new_opens") == 0 {
				f.Note("first_new_at", strings.ReplaceAll(step, " ", "_"))
			}
			f.Inc("new_opens")
			cur, other = other, cur
		} else {
			f.Inc("old_opens")
		}
		t.Logf("killed before %q: %s opens, %d sessions unreadable", step, opens, bad)
	}
	return f
}

// TestCrashPasswdAtEveryStep kills a passphrase change held before each
// step of its header write: the old passphrase opens until the write in
// place, the new one after it, and every session opens every time.
func TestCrashPasswdAtEveryStep(t *testing.T) {
	f := runPasswdHolds(t, "passwdhold", rotateSessions())
	f.Report(t)
	for _, k := range []string{"unreadable_vaults", "unreadable_sessions"} {
		if f.Get(k) != 0 {
			t.Errorf("%s = %d, want 0", k, f.Get(k))
		}
	}
	// Both outcomes must have been reached, or the kills did not land
	// on both sides of the switch.
	if f.Get("old_opens") == 0 || f.Get("new_opens") == 0 {
		t.Errorf("kills mid-change: %d left the old passphrase, %d the new; want both > 0", f.Get("old_opens"), f.Get("new_opens"))
	}
	// The switch is the write of the new header into the record's slot
	// that is not current (file layout 2: one pwritev; a SIGKILL keeps
	// what the process wrote, the fdatasync after it is for power cuts):
	// a kill before it keeps the old passphrase, a kill after it the new.
	if got := f.String(); !strings.Contains(got, "first_new_at=fsync") {
		t.Errorf("the new passphrase first opened at a kill other than the one right after the write: %s", got)
	}
}

// TestCrashPasswdHarnessCatchesInPlaceWrite runs the same harness on a
// passphrase change that rewrites the header in place: a kill after the
// truncation must leave a vault that neither passphrase opens, and the
// harness must say so.
func TestCrashPasswdHarnessCatchesInPlaceWrite(t *testing.T) {
	f := runPasswdHolds(t, "inplacepasswd", 5)
	f.Report(t)
	if f.Get("unreadable_vaults") == 0 {
		t.Fatal("the harness did not detect a header written in place")
	}
}
