// Package swtpmtest starts real software TPMs (swtpm) for tests: each
// test gets its own, which it can stop, restart (a reboot: the state
// stays) and wipe (a new TPM: new seeds). scripts/with-swtpm, which
// scripts/test runs, installs swtpm and names it in $SESSIONVAULT_SWTPM;
// without it tests skip, or fail under CI (internal/servicetest).
package swtpmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// Env names the swtpm binary.
const Env = "SESSIONVAULT_SWTPM"

// TPM is one running software TPM.
type TPM struct {
	t testing.TB
	// State is its state folder; Socket the Unix socket of its TPM
	// command channel (what package tpm's New takes).
	State, Socket string
	cmd           *exec.Cmd
}

// Start starts a software TPM whose state lives in state (made if
// missing) and stops it when the test ends.
func Start(t testing.TB, state string) *TPM {
	t.Helper()
	servicetest.Require(t, Env, "software TPM (swtpm)", "scripts/with-swtpm")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	sock, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	s := &TPM{t: t, State: state, Socket: filepath.Join(sock, "tpm")}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the TPM again on its state (after Stop: a reboot).
func (s *TPM) Restart() {
	s.t.Helper()
	s.Stop()
	ctrl := s.Socket + ".ctrl"
	os.Remove(s.Socket)
	os.Remove(ctrl)
	s.cmd = exec.Command(os.Getenv(Env), "socket", "--tpm2",
		"--tpmstate", "dir="+s.State,
		"--server", "type=unixio,path="+s.Socket,
		"--ctrl", "type=unixio,path="+ctrl,
		"--flags", "not-need-init,startup-clear")
	// swtpm logs every client disconnect: keep its chatter out of the
	// test output, in a file next to the socket.
	if f, err := os.OpenFile(filepath.Join(filepath.Dir(s.Socket), "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		s.cmd.Stderr = f
		defer f.Close()
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(s.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("swtpm did not create %s within 10 s", s.Socket)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the TPM; its state stays in State.
func (s *TPM) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Wipe stops the TPM, deletes its state and starts it again: a new TPM
// with new seeds, as after a TPM clear or on another machine.
func (s *TPM) Wipe() {
	s.t.Helper()
	s.Stop()
	if err := os.RemoveAll(s.State); err != nil {
		s.t.Fatal(err)
	}
	if err := os.MkdirAll(s.State, 0o700); err != nil {
		s.t.Fatal(err)
	}
	s.Restart()
}
