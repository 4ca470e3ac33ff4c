package faulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// The durable-write order, observed in the system calls the kernel
// actually ran: the saves run in a child traced by strace(1), and the
// trace, not the backend's own step labels, must show, for the save that
// creates a record (file layout 2's rename recipe), the temp file written
// and fsynced before it is renamed over the target and the folder fsynced
// after the rename; for the update in place of an existing record,
// exactly one write to the record, then an fdatasync (or fsync) of it,
// and no rename.

// sysEvent is one completed system call of a trace.
type sysEvent struct {
	name string // "fsync", "renameat", ...
	args string // as strace prints them, with -y paths: 3</a/b>
	ret  string
}

var (
	straceLine = regexp.MustCompile(`^(\d+) +(.*)$`)
	callLine   = regexp.MustCompile(`^([a-z0-9_]+)\((.*)\) += (.*)$`)
	resumed    = regexp.MustCompile(`^<\.\.\. ([a-z0-9_]+) resumed>(.*)$`)
)

// parseTrace reads strace -f -y output, joins the calls that other
// threads interrupted ("<unfinished ...>" / "<... resumed>"), and returns
// the calls after the mark, in the order they completed.
func parseTrace(text string) []sysEvent {
	pending := map[string]string{}
	var out []sysEvent
	marked := false
	for _, l := range strings.Split(text, "\n") {
		m := straceLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		pid, rest := m[1], m[2]
		if p, ok := strings.CutSuffix(rest, " <unfinished ...>"); ok {
			pending[pid] = p
			continue
		}
		if r := resumed.FindStringSubmatch(rest); r != nil {
			rest = pending[pid] + r[2]
			delete(pending, pid)
		}
		c := callLine.FindStringSubmatch(rest)
		if c == nil {
			continue
		}
		if strings.Contains(c[2], markUpdatePath) {
			out = append(out, sysEvent{name: "mark-update"})
			continue
		}
		if strings.Contains(c[2], markPath) {
			marked = true
			continue
		}
		if marked {
			out = append(out, sysEvent{c[1], c[2], c[3]})
		}
	}
	return out
}

// fdPath returns the path strace -y shows for the fd argument arg
// ("3</a/b>" -> "/a/b").
func fdPath(arg string) string {
	i, j := strings.IndexByte(arg, '<'), strings.LastIndexByte(arg, '>')
	if i < 0 || j < i {
		return ""
	}
	return arg[i+1 : j]
}

// checkDurable checks, in the calls evs, the durable replacement of the
// file named target (a base name): the temp file renamed over it was
// written and fsynced, on its own descriptor, before the rename; the
// rename succeeded; the folder that holds target was fsynced after it.
func checkDurable(evs []sysEvent, target string) error {
	rename := -1
	var tmp, dir string
	for i, e := range evs {
		if !strings.HasPrefix(e.name, "rename") || e.ret != "0" {
			continue
		}
		parts := splitArgs(e.args)
		var src, dst string
		switch len(parts) {
		case 2: // rename(old, new)
			src, dst = unquote(parts[0]), unquote(parts[1])
			dir = filepath.Dir(dst)
		case 4, 5: // renameat(dirfd, old, dirfd, new[, flags])
			src, dst = unquote(parts[1]), unquote(parts[3])
			dir = fdPath(parts[2])
		}
		if filepath.Base(dst) == target && strings.Contains(filepath.Base(src), ".tmp-") {
			rename, tmp = i, filepath.Base(src)
		}
	}
	if rename < 0 {
		return fmt.Errorf("no successful rename of a temp file over %s in the trace", target)
	}
	wrote, synced := false, false
	for _, e := range evs[:rename] {
		if len(e.args) == 0 {
			continue
		}
		p := fdPath(splitArgs(e.args)[0])
		if filepath.Base(p) != tmp {
			continue
		}
		switch e.name {
		case "write", "pwrite64", "writev", "pwritev", "pwritev2":
			wrote = true
			synced = false // a write after the fsync is not covered by it
		case "fsync", "fdatasync":
			if e.ret == "0" && wrote {
				synced = true
			}
		}
	}
	switch {
	case !wrote:
		return fmt.Errorf("%s: no write to the temp file %s before the rename", target, tmp)
	case !synced:
		return fmt.Errorf("%s: the temp file %s was not fsynced after its last write and before the rename", target, tmp)
	}
	for _, e := range evs[rename+1:] {
		if (e.name == "fsync" || e.name == "fdatasync") && e.ret == "0" && fdPath(e.args) == dir {
			return nil
		}
	}
	return fmt.Errorf("%s: the folder %s was not fsynced after the rename", target, dir)
}

// splitAtUpdate returns the calls before and after the update mark.
func splitAtUpdate(evs []sysEvent) (create, update []sysEvent, ok bool) {
	for i, e := range evs {
		if e.name == "mark-update" {
			return evs[:i], evs[i+1:], true
		}
	}
	return evs, nil, false
}

// checkInPlace checks, in the calls evs of an update in place, that the
// file named target (a base name) got exactly one successful write call
// (pwritev(2) in layout 2), followed by a successful fdatasync (or fsync)
// of it, and that nothing was renamed over it.
func checkInPlace(evs []sysEvent, target string) error {
	writes, synced := 0, false
	for _, e := range evs {
		if strings.HasPrefix(e.name, "rename") && e.ret == "0" {
			parts := splitArgs(e.args)
			if filepath.Base(unquote(parts[len(parts)-1])) == target ||
				(len(parts) >= 4 && filepath.Base(unquote(parts[3])) == target) {
				return fmt.Errorf("%s: an update in place renamed a file over the record: %s(%s)", target, e.name, e.args)
			}
		}
		if len(e.args) == 0 || filepath.Base(fdPath(splitArgs(e.args)[0])) != target {
			continue
		}
		switch e.name {
		case "write", "pwrite64", "writev", "pwritev", "pwritev2":
			if !strings.HasPrefix(e.ret, "-") {
				writes++
			}
			synced = false
		case "fsync", "fdatasync":
			if e.ret == "0" && writes > 0 {
				synced = true
			}
		}
	}
	switch {
	case writes != 1:
		return fmt.Errorf("%s: %d write calls to the record in an update in place, want 1", target, writes)
	case !synced:
		return fmt.Errorf("%s: the record was not fdatasynced after its write", target)
	}
	return nil
}

// splitArgs splits strace's argument list on the commas outside quotes
// and brackets.
func splitArgs(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<' || c == '[' || c == '{' || c == '(':
			depth++
		case c == '>' || c == ']' || c == '}' || c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func unquote(s string) string { return strings.Trim(s, `"`) }

// traceChild runs role in a child under strace and returns its calls
// after the mark.
func traceChild(t *testing.T, role, dir string) []sysEvent {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		if servicetest.Required() {
			t.Fatal("strace(1) is required (CI=true or SESSIONVAULT_REQUIRE_SERVICES=1) but not installed: scripts/test installs it")
		}
		t.Skip("strace(1) is not installed (apt-get install strace): the syscall trace is not checked")
	}
	out := filepath.Join(t.TempDir(), "trace")
	c, err := reexec.Start(role, reexec.Options{Wrapper: []string{strace, "-f", "-y", "-qq", "-o", out,
		"-e", "trace=openat,write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,close,linkat,rename,renameat,renameat2"}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s under strace: %v\n%s", role, err, c.Stderr())
		}
	case <-ctx.Done():
		c.Kill()
		t.Fatalf("%s under strace: timed out", role)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	evs := parseTrace(string(text))
	if len(evs) == 0 {
		t.Fatalf("no system call after the mark in the trace of %s:\n%.2000s", role, text)
	}
	return evs
}

// TestDurableWriteSyscalls traces two real session saves and checks their
// system calls. The first creates the session's record: write and fsync
// of the temp file, then the rename over bot.sealed, then an fsync of the
// sessions folder. The second updates it in place: one write call
// (pwritev) into the record, then its fdatasync, no rename. Removing any
// of those syncs from the file backend makes it fail.
func TestDurableWriteSyscalls(t *testing.T) {
	f := figures.New("faults/durable-syscalls")
	f.Declare("calls_traced", "order_violations", "update_calls_traced")
	evs := traceChild(t, "save", filepath.Join(t.TempDir(), "vault"))
	create, update, ok := splitAtUpdate(evs)
	if !ok {
		t.Fatal("no update mark in the trace")
	}
	f.Add("calls_traced", int64(len(create)))
	f.Add("update_calls_traced", int64(len(update)))
	for _, err := range []error{checkDurable(create, sessionName+".sealed"), checkInPlace(update, sessionName+".sealed")} {
		if err != nil {
			f.Inc("order_violations")
			t.Error(err)
		}
	}
	if t.Failed() {
		for _, e := range evs {
			t.Logf("%s(%s) = %s", e.name, e.args, e.ret)
		}
	}
	f.Report(t)
}

// TestDurableWriteSyscallsCatchesNoFsync runs the same checks on the trace
// of a writer that renames without any fsync, then updates in place
// without an fdatasync: both checks must refuse it.
func TestDurableWriteSyscallsCatchesNoFsync(t *testing.T) {
	evs := traceChild(t, "naivesave", t.TempDir())
	create, update, ok := splitAtUpdate(evs)
	if !ok {
		t.Fatal("no update mark in the trace")
	}
	err := checkDurable(create, sessionName+".sealed")
	if err == nil || !strings.Contains(err.Error(), "not fsynced") {
		t.Fatalf("the check accepted a save with no fsync: %v", err)
	}
	t.Logf("refused, as it must be: %v", err)
	err = checkInPlace(update, sessionName+".sealed")
	if err == nil || !strings.Contains(err.Error(), "not fdatasynced") {
		t.Fatalf("the check accepted an update in place with no fdatasync: %v", err)
	}
	t.Logf("refused, as it must be: %v", err)
}
