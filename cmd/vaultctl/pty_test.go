//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// lockedBuffer collects a pty's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ptyRun starts vaultctl (this test binary as Main) on a new pseudo-
// terminal, as its controlling terminal and its stdin/stdout/stderr.
type ptyRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	out  *lockedBuffer
	done chan struct{}
}

func startPTY(t *testing.T, args ...string) *ptyRun {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = baseEnv(t)
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	r := &ptyRun{t: t, cmd: cmd, ptmx: ptmx, out: new(lockedBuffer), done: make(chan struct{})}
	go func() {
		// Reading the master ends with EIO once the child exits and
		// closes the terminal.
		_, _ = io.Copy(r.out, ptmx)
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		ptmx.Close()
	})
	return r
}

// expect waits until the output contains s (after byte offset from).
func (r *ptyRun) expect(s string, from int) int {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out := r.out.String()
		if i := strings.Index(out[from:], s); i >= 0 {
			return from + i + len(s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %q; output so far:\n%s", s, r.out.String())
	return 0
}

func (r *ptyRun) typeLine(s string) {
	r.t.Helper()
	if _, err := r.ptmx.Write([]byte(s + "\r")); err != nil {
		r.t.Fatal(err)
	}
}

// wait returns the exit code and the whole terminal output.
func (r *ptyRun) wait() (int, string) {
	r.t.Helper()
	err := r.cmd.Wait()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Fatal("pty output did not end")
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return code, r.out.String()
}

// floorKDF keeps argon2id at the production floor in these tests.
var floorKDF = []string{"--kdf-time", "2", "--kdf-memory", "19", "--kdf-threads", "1"}

// TestPromptDoesNotEcho types a passphrase at init's two prompts on a
// real terminal: the passphrase must not appear in anything the terminal
// shows, and the vault must then open with it.
func TestPromptDoesNotEcho(t *testing.T) {
	// Control: this harness does see what a program that keeps echo on
	// reads, so the check below can fail.
	ctl := exec.Command("sh", "-c", "read x; echo done")
	ptmx, err := pty.Start(ctl)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	ptmx.Write([]byte("control-echo-3b8e\r"))
	var ctlOut bytes.Buffer
	io.Copy(&ctlOut, ptmx) // ends with EIO when sh exits
	ctl.Wait()
	ptmx.Close()
	if !strings.Contains(ctlOut.String(), "control-echo-3b8e") {
		t.Fatalf("the pty harness does not show echoed input: %q", ctlOut.String())
	}

	dir := filepath.Join(t.TempDir(), "vault")
	const typed = "typed-Passphrase-7d41c09e"
	r := startPTY(t, append([]string{"--dir", dir, "init"}, floorKDF...)...)
	off := r.expect("New passphrase", 0)
	off = r.expect(": ", off)
	r.typeLine(typed)
	off = r.expect("Repeat new passphrase", off)
	r.expect(": ", off)
	r.typeLine(typed)
	code, out := r.wait()
	if strings.Contains(out, typed) || strings.Contains(out, typed[:12]) {
		t.Fatalf("the passphrase was echoed on the terminal:\n%s", out)
	}
	if code != 0 {
		t.Fatalf("init exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "created vault") {
		t.Fatalf("no confirmation in the output:\n%s", out)
	}

	// The passphrase typed on the terminal is the one that opens it.
	r = startPTY(t, "--dir", dir, "status")
	off = r.expect("Passphrase for", 0)
	r.expect(": ", off)
	r.typeLine(typed)
	code, out = r.wait()
	if code != 0 || strings.Contains(out, typed) {
		t.Fatalf("status after init: exit %d, echoed %v:\n%s", code, strings.Contains(out, typed), out)
	}

	// And a wrong one typed there is exit 4.
	r = startPTY(t, "--dir", dir, "status")
	off = r.expect("Passphrase for", 0)
	r.expect(": ", off)
	r.typeLine("not-the-passphrase")
	if code, out = r.wait(); code != exitWrongKey {
		t.Fatalf("wrong passphrase on the terminal: exit %d, want %d:\n%s", code, exitWrongKey, out)
	}
}

// TestPromptMismatchRefused types two different passphrases at init:
// refused, nothing created.
func TestPromptMismatchRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	r := startPTY(t, append([]string{"--dir", dir, "init"}, floorKDF...)...)
	off := r.expect("New passphrase", 0)
	off = r.expect(": ", off)
	r.typeLine("first-passphrase-aaaa")
	off = r.expect("Repeat new passphrase", off)
	r.expect(": ", off)
	r.typeLine("second-passphrase-bbbb")
	code, out := r.wait()
	if code == 0 {
		t.Fatalf("mismatched confirmation accepted:\n%s", out)
	}
	if !strings.Contains(out, "do not match") {
		t.Fatalf("no mismatch message:\n%s", out)
	}
	if strings.Contains(out, "first-passphrase") || strings.Contains(out, "second-passphrase") {
		t.Fatalf("a passphrase was echoed:\n%s", out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init left %s behind (err %v)", dir, err)
	}
}

// TestNoTerminalNoPassphrase: with no terminal and no passphrase source,
// vaultctl says what to pass instead of hanging (exit 2).
func TestNoTerminalNoPassphrase(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--dir", filepath.Join(t.TempDir(), "v"), "init")
	cmd.Env = baseEnv(t)
	cmd.SysProcAttr = detachedAttr() // no controlling terminal
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit %v, want %d; stderr: %s", err, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--passphrase-file") {
		t.Fatalf("message does not say what to do: %s", stderr.String())
	}
}

// TestProgressBarOnTerminal: rotate-key over enough sessions draws a
// progress bar on a terminal's stderr (and nothing secret).
func TestProgressBarOnTerminal(t *testing.T) {
	dir, pass := makeVault(t, 0)
	sealSessions(t, dir, "crash-test-passphrase", 2*progressMin, 0)
	r := startPTY(t, "--dir", dir, "--passphrase-file", pass, "rotate-key")
	code, out := r.wait()
	if code != 0 {
		t.Fatalf("rotate-key: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "\rrotate-key [") || !strings.Contains(out, fmt.Sprintf("%d/%d", 2*progressMin, 2*progressMin)) {
		t.Fatalf("no progress bar on the terminal:\n%q", out)
	}
	if strings.Contains(out, "crash-access-") {
		t.Fatalf("a token reached the terminal:\n%q", out)
	}
}

// TestPromptInterruptRestoresEcho: Ctrl-C at the passphrase prompt ends
// vaultctl (exit 1, "interrupted") and leaves the terminal echoing again.
func TestPromptInterruptRestoresEcho(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"--dir", filepath.Join(t.TempDir(), "v"), "init"}, floorKDF...)...)
	cmd.Env = baseEnv(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &ptyRun{t: t, cmd: cmd, ptmx: ptmx, out: new(lockedBuffer), done: make(chan struct{})}
	go func() { io.Copy(r.out, ptmx); close(r.done) }()
	off := r.expect("New passphrase", 0)
	r.expect(": ", off)
	// While the prompt waits, echo is off on the terminal (turned off
	// just after the prompt is written: poll for it).
	for deadline := time.Now().Add(5 * time.Second); ; {
		st, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo is still on while the passphrase prompt waits")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ptmx.Write([]byte{3}) // Ctrl-C: the line discipline sends SIGINT
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitError {
		t.Fatalf("after Ctrl-C: %v, want exit %d", err, exitError)
	}
	st, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lflag&unix.ECHO == 0 {
		t.Fatal("the terminal was left without echo after Ctrl-C at the prompt")
	}
	tty.Close()
	<-r.done
	if !strings.Contains(r.out.String(), "interrupted") {
		t.Fatalf("no interruption message: %q", r.out.String())
	}
}
