package tpm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// swtpmEnv names the swtpm binary. scripts/with-swtpm (run by
// scripts/test) installs swtpm and sets it; each test then starts its own
// software TPMs, which it can stop, restart and wipe.
const swtpmEnv = "SESSIONVAULT_SWTPM"

// swtpm is one running software TPM.
type swtpm struct {
	t      testing.TB
	state  string // its state folder
	socket string // the TPM command socket
	cmd    *exec.Cmd
}

// startSWTPM starts a software TPM whose state lives in state (made if
// missing), and stops it when the test ends.
func startSWTPM(t testing.TB, state string) *swtpm {
	t.Helper()
	servicetest.Require(t, swtpmEnv, "software TPM (swtpm)", "scripts/with-swtpm")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	sock, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	s := &swtpm{t: t, state: state, socket: filepath.Join(sock, "tpm")}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *swtpm) start() {
	s.t.Helper()
	ctrl := s.socket + ".ctrl"
	os.Remove(s.socket)
	os.Remove(ctrl)
	s.cmd = exec.Command(os.Getenv(swtpmEnv), "socket", "--tpm2",
		"--tpmstate", "dir="+s.state,
		"--server", "type=unixio,path="+s.socket,
		"--ctrl", "type=unixio,path="+ctrl,
		"--flags", "not-need-init,startup-clear")
	// swtpm logs every client disconnect: keep its chatter out of the
	// test output, in a file next to its state.
	if f, err := os.OpenFile(filepath.Join(filepath.Dir(s.socket), "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		s.cmd.Stderr = f
		defer f.Close()
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(s.socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("swtpm did not create %s within 10 s", s.socket)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the software TPM (its state stays in s.state).
func (s *swtpm) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// wipe stops the TPM, deletes its state and starts it again: a new TPM
// with new seeds, as after a TPM clear or on another machine.
func (s *swtpm) wipe() {
	s.t.Helper()
	s.stop()
	if err := os.RemoveAll(s.state); err != nil {
		s.t.Fatal(err)
	}
	if err := os.MkdirAll(s.state, 0o700); err != nil {
		s.t.Fatal(err)
	}
	s.start()
}
