package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

const sessionName = "bot"

var testKDF = kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}

func opts(pass string) []vault.Option {
	return []vault.Option{
		vault.WithPassphrase([]byte(pass)),
		vault.WithKDFParams(testKDF),
		vault.WithKDFPolicy(kdf.InsecurePolicyForTesting),
	}
}

// putSteps are the steps of a Put that updates a stored blob (layout 2:
// in place), in the order the backend runs them. The steps of a write
// that creates or rewrites a record (file.RewriteSteps) are failed one by
// one in backends/file's TestPutFaults.
var putSteps = file.PutSteps()

// faults are the errors injected: a failing disk, a full disk, a
// filesystem remounted read-only.
var faults = []syscall.Errno{syscall.EIO, syscall.ENOSPC, syscall.EROFS}

// injector is a step hook that fails one step of puts of one name while
// armed, and records every step it sees.
type injector struct {
	mu    sync.Mutex
	armed bool
	name  string
	step  file.Step
	err   error
	fired int
	seen  []file.StepInfo
	// hold, when set, is called at every step of a put of name, to
	// examine the folder while the write is in progress.
	hold func(file.StepInfo)
}

func (in *injector) hook(ctx context.Context, s file.StepInfo) error {
	in.mu.Lock()
	in.seen = append(in.seen, s)
	fire := in.armed && s.Op == "put" && s.Name == in.name && s.Step == in.step
	if fire {
		in.fired++
	}
	hold := in.hold
	in.mu.Unlock()
	if hold != nil && s.Op == "put" && s.Name == in.name {
		hold(s)
	}
	if fire {
		return in.err
	}
	return nil
}

func (in *injector) arm(name string, step file.Step, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed, in.name, in.step, in.err, in.fired, in.seen = true, name, step, err, 0, nil
}

func (in *injector) disarm() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed = false
	return in.fired
}

func tokens(tag string) session.AuthTokens {
	return session.NewAuthTokens([]byte("access-"+tag), []byte("refresh-"+tag), nil)
}

// storedAccess opens the vault afresh, without any hook, and returns the
// stored session's access token.
func storedAccess(ctx context.Context, dir, pass string) (string, error) {
	b, err := file.New(dir)
	if err != nil {
		return "", err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, opts(pass)...)
	if err != nil {
		return "", err
	}
	defer v.Close()
	plain, _, err := v.Store(sessionName).Open(ctx)
	if err != nil {
		return "", err
	}
	var ps struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(plain, &ps); err != nil {
		return "", err
	}
	return ps.Tokens.AccessToken, nil
}

// tempFiles lists the temp files left anywhere in the vault folder.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var tmps []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			tmps = append(tmps, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tmps
}

// checkStepError checks that err is a typed backend error for step
// caused by fault, and that its message names the step.
func checkStepError(err error, step file.Step, fault syscall.Errno) error {
	var op *backends.OpError
	switch {
	case err == nil:
		return errors.New("the call succeeded")
	case !errors.As(err, &op):
		return fmt.Errorf("error is not a *backends.OpError: %v", err)
	case op.Step != string(step):
		return fmt.Errorf("OpError.Step = %q, want %q: %v", op.Step, step, err)
	case !errors.Is(err, fault):
		return fmt.Errorf("error does not match %v: %v", fault, err)
	case !strings.Contains(err.Error(), string(step)):
		return fmt.Errorf("message does not name the step: %v", err)
	}
	return nil
}

// caseResult is what the harness found after one injected fault: each
// field is nil when that property held.
type caseResult struct {
	notFired   error // the step never ran
	untyped    error // the error is not a typed *backends.OpError naming the step
	lost       error // the previous content does not open
	tempLeft   error // a temp file was left in the folder
	noRecovery error // the next save, the fault gone, did not go through
}

// saveCase is the harness for one case: a vault with a session, a save
// whose step fails with fault, then the checks. wrap, when set, replaces
// the file backend by a (deliberately broken) wrapper of it, for the
// harness's self-test.
func saveCase(t *testing.T, step file.Step, fault syscall.Errno, wrap func(b *file.Backend, dir string) backends.Backend) (r caseResult) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")
	in := &injector{}
	fb, err := file.New(dir, file.WithStepHook(in.hook))
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	var b backends.Backend = fb
	if wrap != nil {
		b = wrap(fb, dir)
	}
	v, err := vault.Create(ctx, b, opts("pw")...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if err := m.CreateSession(ctx, tokens("old"), nil, nil); err != nil {
		t.Fatal(err)
	}
	in.arm(sessionName, step, fault)
	err = m.UpdateTokens(ctx, tokens("new"))
	if in.disarm() == 0 {
		r.notFired = fmt.Errorf("step %q never ran during a save", step)
		return r
	}
	r.untyped = checkStepError(err, step, fault)
	if got, err := storedAccess(ctx, dir, "pw"); err != nil || got != "access-old" {
		r.lost = fmt.Errorf("previous content: %q, %v", got, err)
	}
	if tmps := tempFiles(t, dir); len(tmps) > 0 {
		r.tempLeft = fmt.Errorf("temp files left: %q", tmps)
	}
	// The fault gone, the next save goes through.
	if err := m.UpdateTokens(ctx, tokens("after")); err != nil {
		r.noRecovery = fmt.Errorf("save after the fault: %v", err)
	} else if got, err := storedAccess(ctx, dir, "pw"); err != nil || got != "access-after" {
		r.noRecovery = fmt.Errorf("after recovery: %q, %v", got, err)
	}
	return r
}

// TestFaultEveryStepOfASessionSave fails each step of a session save with
// each fault and checks what must survive.
func TestFaultEveryStepOfASessionSave(t *testing.T) {
	f := figures.New("faults/session-save")
	f.Declare("tried", "not_fired", "untyped", "states_lost", "temp_left", "no_recovery")
	for _, step := range putSteps {
		for _, fault := range faults {
			t.Run(fmt.Sprintf("%s/%s", strings.ReplaceAll(string(step), " ", "_"), fault), func(t *testing.T) {
				f.Inc("tried")
				r := saveCase(t, step, fault, nil)
				for _, c := range []struct {
					key string
					err error
				}{{"not_fired", r.notFired}, {"untyped", r.untyped}, {"states_lost", r.lost}, {"temp_left", r.tempLeft}, {"no_recovery", r.noRecovery}} {
					if c.err != nil {
						f.Inc(c.key)
						t.Error(c.err)
					}
				}
			})
		}
	}
	f.Note("steps", fmt.Sprint(len(putSteps)))
	f.Note("faults", fmt.Sprint(len(faults)))
	f.Report(t)
}

// TestFaultEveryStepOfAHeaderWrite does the same for the vault header,
// rewritten by a passphrase change: after each fault the old passphrase
// still opens the vault and the session.
func TestFaultEveryStepOfAHeaderWrite(t *testing.T) {
	ctx := context.Background()
	f := figures.New("faults/header-write")
	f.Declare("tried", "not_fired", "untyped", "states_lost", "temp_left")
	for _, step := range putSteps {
		for _, fault := range faults {
			t.Run(fmt.Sprintf("%s/%s", strings.ReplaceAll(string(step), " ", "_"), fault), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "vault")
				in := &injector{}
				b, err := file.New(dir, file.WithStepHook(in.hook))
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				v, err := vault.Create(ctx, b, opts("old-pw")...)
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				if _, err := v.Store(sessionName).Seal(ctx, []byte(`{"tokens":{"access_token":"access-old","refresh_token":"r","expires_at":null}}`), backends.Absent); err != nil {
					t.Fatal(err)
				}
				f.Inc("tried")
				in.arm(backends.HeaderName, step, fault)
				err = v.ChangePassphrase(ctx, []byte("new-pw"), testKDF)
				if in.disarm() == 0 {
					f.Inc("not_fired")
					t.Fatalf("step %q never ran during a header write", step)
				}
				if e := checkStepError(err, step, fault); e != nil {
					f.Inc("untyped")
					t.Error(e)
				}
				if got, err := storedAccess(ctx, dir, "old-pw"); err != nil || got != "access-old" {
					f.Inc("states_lost")
					t.Errorf("with the old passphrase: %q, %v", got, err)
				}
				if tmps := tempFiles(t, dir); len(tmps) > 0 {
					f.Inc("temp_left")
					t.Errorf("temp files left: %q", tmps)
				}
			})
		}
	}
	f.Report(t)
}

// TestWriteStepOrder records the steps the file backend announces to its
// step hook during one save: under the name's write lock the record is
// read, the blob written into the slot that is not current and the record
// fdatasynced, before the call returns. A save that returned before its
// fdatasync would survive a kill -9 but not a power cut. It checks the
// order in which the code asks for the steps, which the fault tests above
// rely on; it does not see the system calls (a step whose call was
// deleted would still be announced). TestDurableWriteSyscalls checks
// those, in a strace(1) trace.
func TestWriteStepOrder(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")
	in := &injector{}
	b, err := file.New(dir, file.WithStepHook(in.hook))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, opts("pw")...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	st := v.Store(sessionName)
	ver, err := st.Seal(ctx, []byte(`{"tokens":{"access_token":"a","refresh_token":"r","expires_at":null}}`), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	in.arm("no such name", "", nil) // record only
	if _, err := st.Seal(ctx, []byte(`{"tokens":{"access_token":"b","refresh_token":"r","expires_at":null}}`), ver); err != nil {
		t.Fatal(err)
	}
	in.disarm()
	var got []file.Step
	for _, s := range in.seen {
		if s.Op == "put" && s.Name == sessionName {
			got = append(got, s.Step)
		}
	}
	if !slices.Equal(got, putSteps) {
		t.Fatalf("steps of a save:\n got %q\nwant %q", got, putSteps)
	}
}

var _ = time.Second
