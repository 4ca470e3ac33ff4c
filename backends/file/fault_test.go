//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/sessionvault/sessionvault/internal/figures"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// faults are the errors injected at each step: what a full disk, a dying
// disk and a filesystem remounted read-only return.
var faults = []syscall.Errno{syscall.EIO, syscall.ENOSPC, syscall.EROFS}

// errnoName names a fault for subtest names.
func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EIO:
		return "EIO"
	case syscall.ENOSPC:
		return "ENOSPC"
	case syscall.EROFS:
		return "EROFS"
	}
	return fmt.Sprint(int(e))
}

// injector fails the armed step of the armed operation, once.
type injector struct {
	op    atomic.Value // string
	step  atomic.Value // file.Step
	errno atomic.Value // syscall.Errno
	armed atomic.Bool
	fired atomic.Int32
}

func (in *injector) arm(op string, step file.Step, errno syscall.Errno) {
	in.op.Store(op)
	in.step.Store(step)
	in.errno.Store(errno)
	in.fired.Store(0)
	in.armed.Store(true)
}

func (in *injector) hook(ctx context.Context, s file.StepInfo) error {
	if in.armed.Load() && s.Op == in.op.Load().(string) && s.Step == in.step.Load().(file.Step) {
		in.armed.Store(false)
		in.fired.Add(1)
		return in.errno.Load().(syscall.Errno)
	}
	return nil
}

// checkFault checks the error of a call that had step fail with errno.
func checkFault(t *testing.T, err error, step file.Step, errno syscall.Errno) {
	t.Helper()
	var oe *backends.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T) is not a *backends.OpError", err, err)
	}
	if oe.Step != string(step) {
		t.Errorf("OpError.Step = %q, want %q (error: %v)", oe.Step, step, err)
	}
	if !errors.Is(err, errno) {
		t.Errorf("error %v does not match %v", err, errno)
	}
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("error %v does not match ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), string(step)) || !strings.Contains(err.Error(), errno.Error()) {
		t.Errorf("message %q does not name the step %q and the cause %q", err, step, errno.Error())
	}
}

var putSteps = file.PutSteps()

// TestPutStepOrder checks that PutSteps is the order a Put runs.
func TestPutStepOrder(t *testing.T) {
	ctx := context.Background()
	var got []file.Step
	b := newBackend(t, file.WithStepHook(func(ctx context.Context, s file.StepInfo) error {
		if s.Op == "put" {
			got = append(got, s.Step)
		}
		return nil
	}))
	v, _ := b.Put(ctx, "s", []byte("1"), backends.Absent)
	got = nil
	if _, err := b.Put(ctx, "s", []byte("2"), v); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, putSteps) {
		t.Fatalf("steps of a Put: %q, PutSteps says %q", got, putSteps)
	}
}

// TestPutFaults fails each step of a Put with each fault, for an update
// in place (PutSteps) and for a Put whose blob outgrows its record, which
// is rewritten through a temp file (RewriteSteps): the call returns a
// typed error naming the step, the previous content is still what Get
// returns (whole, same version), no temp file is left, and the next Put
// works. The generation before that survives every fault before the
// write; a failed write in place costs it (the slot it held is the one
// written), as does a failure after a rewrite's rename.
func TestPutFaults(t *testing.T) {
	fig := figures.New("file/put-faults")
	fig.Declare("cases")
	defer fig.Report(t)
	tried, lost := 0, 0
	big := []byte(strings.Repeat("grown past its slot ", 300)) // 6 KB: over a 4 KiB slot
	cases := []struct {
		kind  string
		steps []file.Step
		newer []byte
	}{
		{"in-place", file.PutSteps(), []byte("new content, longer than the old")},
		{"rewrite", file.RewriteSteps(), big},
	}
	for _, c := range cases {
		for _, name := range []string{"s", backends.HeaderName} {
			for _, step := range c.steps {
				for _, errno := range faults {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", c.kind, name, step, errnoName(errno)), func(t *testing.T) {
						fig.Inc("cases")
						ctx := context.Background()
						var in injector
						b := newBackend(t, file.WithStepHook(in.hook))
						older := []byte("older")
						old := []byte("old\x00content")
						v, err := b.Put(ctx, name, older, backends.Absent)
						if err != nil {
							t.Fatal(err)
						}
						if v, err = b.Put(ctx, name, old, v); err != nil {
							t.Fatal(err)
						}
						in.arm("put", step, errno)
						_, err = b.Put(ctx, name, c.newer, v)
						if in.fired.Load() != 1 {
							t.Fatalf("step %q never ran", step)
						}
						tried++
						checkFault(t, err, step, errno)
						if testing.Verbose() && name == "s" {
							t.Logf("%v", err)
						}
						got, gv, gerr := b.Get(ctx, name)
						if gerr != nil || string(got) != string(old) || gv != v {
							lost++
							t.Errorf("after the fault Get = %q, %q, %v; want the previous content", got, gv, gerr)
						}
						prevKept := step == file.StepLock || step == file.StepRead ||
							(c.kind == "rewrite" && step != file.StepFsyncDir)
						prev, _, err := b.Previous(ctx, name)
						switch {
						case prevKept && (err != nil || string(prev) != string(older)):
							t.Errorf("after the fault Previous = %q, %v; want %q", prev, err, older)
						case !prevKept && !errors.Is(err, backends.ErrNotFound):
							t.Errorf("after the fault Previous = %q, %v; want ErrNotFound", prev, err)
						}
						noTemps(t, b.Path())
						if _, err := b.Put(ctx, name, []byte("retry"), v); err != nil {
							t.Errorf("Put after the fault: %v", err)
						}
						noTemps(t, b.Path())
					})
				}
			}
		}
	}
	// The first write of a name: nothing may appear.
	for _, step := range file.RewriteSteps() {
		for _, errno := range faults {
			t.Run(fmt.Sprintf("create/%s/%s", step, errnoName(errno)), func(t *testing.T) {
				fig.Inc("cases")
				ctx := context.Background()
				var in injector
				b := newBackend(t, file.WithStepHook(in.hook))
				in.arm("put", step, errno)
				_, err := b.Put(ctx, "s", []byte("new"), backends.Absent)
				tried++
				checkFault(t, err, step, errno)
				if _, _, err := b.Get(ctx, "s"); !errors.Is(err, backends.ErrNotFound) {
					lost++
					t.Errorf("after a failed first Put, Get: %v; want ErrNotFound", err)
				}
				if names, _ := b.List(ctx); len(names) != 0 {
					t.Errorf("List after a failed first Put = %q", names)
				}
				noTemps(t, b.Path())
			})
		}
	}
	t.Logf("fault matrix (Put): %d step x fault cases, %d states lost", tried, lost)
}

// TestRestoreFaults: a Restore that fails at any step leaves the current
// blob current and the one to restore still the previous generation.
func TestRestoreFaults(t *testing.T) {
	fig := figures.New("file/restore-faults")
	fig.Declare("cases")
	defer fig.Report(t)
	for _, step := range putSteps {
		if step == file.StepLock {
			continue // Restore takes the write lock before its first step
		}
		for _, errno := range faults {
			t.Run(fmt.Sprintf("%s/%s", step, errnoName(errno)), func(t *testing.T) {
				fig.Inc("cases")
				ctx := context.Background()
				var in injector
				b := newBackend(t, file.WithStepHook(in.hook))
				v1, _ := b.Put(ctx, "s", []byte("one"), backends.Absent)
				v2, _ := b.Put(ctx, "s", []byte("two"), v1)
				in.arm("restore", step, errno)
				_, err := b.Restore(ctx, "s", v2)
				checkFault(t, err, step, errno)
				got, gv, gerr := b.Get(ctx, "s")
				if gerr != nil || string(got) != "two" || gv != v2 {
					t.Errorf("after the fault Get = %q, %q, %v; want the current content", got, gv, gerr)
				}
				// What was to be restored is never lost.
				if prev, _, err := b.Previous(ctx, "s"); err != nil || string(prev) != "one" {
					t.Errorf("after the fault Previous = %q, %v; want %q", prev, err, "one")
				}
				noTemps(t, b.Path())
			})
		}
	}
}

// TestDeleteFaults: a Delete failing before its removals changes
// nothing; failing at the folder fsync it reports that step (the blob is
// already gone from the folder, and no undo is possible).
func TestDeleteFaults(t *testing.T) {
	fig := figures.New("file/delete-faults")
	fig.Declare("cases")
	defer fig.Report(t)
	for _, step := range []file.Step{file.StepLock, file.StepRead, file.StepRemove, file.StepFsyncDir} {
		for _, errno := range faults {
			t.Run(fmt.Sprintf("%s/%s", step, errnoName(errno)), func(t *testing.T) {
				fig.Inc("cases")
				ctx := context.Background()
				var in injector
				b := newBackend(t, file.WithStepHook(in.hook))
				v, _ := b.Put(ctx, "s", []byte("keep"), backends.Absent)
				in.arm("delete", step, errno)
				err := b.Delete(ctx, "s", v)
				checkFault(t, err, step, errno)
				if step == file.StepFsyncDir {
					return
				}
				got, gv, gerr := b.Get(ctx, "s")
				if gerr != nil || string(got) != "keep" || gv != v {
					t.Errorf("after the fault Get = %q, %q, %v; want the content", got, gv, gerr)
				}
			})
		}
	}
}

// TestReadFaults: a failing read is reported, typed, and changes nothing.
func TestReadFaults(t *testing.T) {
	fig := figures.New("file/read-faults")
	fig.Declare("cases")
	defer fig.Report(t)
	ctx := context.Background()
	var in injector
	b := newBackend(t, file.WithStepHook(in.hook))
	v, _ := b.Put(ctx, "s", []byte("x"), backends.Absent)
	in.arm("get", file.StepRead, syscall.EIO)
	fig.Inc("cases")
	if _, _, err := b.Get(ctx, "s"); !errors.Is(err, syscall.EIO) || !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Get with EIO: %v", err)
	}
	if _, gv, err := b.Get(ctx, "s"); err != nil || gv != v {
		t.Fatalf("Get after: %q, %v", gv, err)
	}
}

// TestSlowWrite holds a Put at its fsync step: meanwhile readers get the
// old blob without waiting, and nothing appears under the session's name.
func TestSlowWrite(t *testing.T) {
	ctx := context.Background()
	hold, release := make(chan struct{}), make(chan struct{})
	b := newBackend(t, file.WithStepHook(func(ctx context.Context, s file.StepInfo) error {
		if s.Op == "put" && s.Step == file.StepFsync && s.Name == "s" {
			close(hold)
			<-release
		}
		return nil
	}))
	v, err := b.Put(ctx, "other", []byte("o"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Put(ctx, "s", []byte("new"), backends.Absent)
		done <- err
	}()
	<-hold
	if _, _, err := b.Get(ctx, "s"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Get during the write: %v, want ErrNotFound", err)
	}
	if names, _ := b.List(ctx); len(names) != 1 || names[0] != "other" {
		t.Errorf("List during the write = %q", names)
	}
	// Other names can be written meanwhile: each name has its own write
	// lock.
	if _, err := b.Put(ctx, "other", []byte("o2"), v); err != nil {
		t.Errorf("Put of another name during the write: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	noTemps(t, b.Path())
}
