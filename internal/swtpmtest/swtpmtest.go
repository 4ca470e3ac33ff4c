//go:build !windows

// Package swtpmtest starts real software TPMs (swtpm) for tests: each
// test gets its own, which it can stop, restart (a reboot: the state
// stays), wipe (a new TPM: new seeds) and have a PCR extended in.
// scripts/with-swtpm, which scripts/test runs, installs swtpm and names it
// in $SESSIONVAULT_SWTPM; without it tests skip, or fail under CI
// (internal/servicetest).
package swtpmtest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// Env names the swtpm binary.
const Env = "SESSIONVAULT_SWTPM"

// TPM is one software TPM.
type TPM struct {
	// State is its state folder; Socket the Unix socket of its TPM
	// command channel (what package tpm's New takes).
	State, Socket string
	dir           string // holds the sockets and the log
	cmd           *exec.Cmd
}

// Start starts a software TPM whose state lives in state (made if
// missing) and stops it when the test ends. It skips or fails t (by
// internal/servicetest's rule) when swtpm is not set up.
func Start(t testing.TB, state string) *TPM {
	t.Helper()
	servicetest.Require(t, Env, "software TPM (swtpm)", "scripts/with-swtpm")
	s, err := New(state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	return s
}

// New prepares a software TPM with its state in state, not started yet;
// Close stops it and removes its sockets.
func New(state string) (*TPM, error) {
	if os.Getenv(Env) == "" {
		return nil, fmt.Errorf("swtpmtest: $%s is unset: run under scripts/with-swtpm", Env)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	dir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		return nil, err
	}
	return &TPM{State: state, Socket: filepath.Join(dir, "tpm"), dir: dir}, nil
}

// Close stops the TPM and removes its sockets (not its state).
func (s *TPM) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// Restart (re)starts the TPM on its state: after Stop, a reboot.
func (s *TPM) Restart() error {
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
	if f, err := os.OpenFile(filepath.Join(s.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		s.cmd.Stderr = f
		defer f.Close()
	}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The socket file appears at bind, before swtpm listens on it:
		// wait until a connection is accepted.
		if fi, err := os.Stat(s.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", s.Socket); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			return fmt.Errorf("swtpmtest: swtpm did not create %s within 10 s: %s", s.Socket, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the TPM (its state stays in State).
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
func (s *TPM) Wipe() error {
	s.Stop()
	if err := os.RemoveAll(s.State); err != nil {
		return err
	}
	if err := os.MkdirAll(s.State, 0o700); err != nil {
		return err
	}
	return s.Restart()
}

// ExtendPCR extends PCR pcr of the SHA-256 bank with a random digest, as
// a boot component measured into it would.
func (s *TPM) ExtendPCR(pcr int) error {
	if s.cmd == nil {
		return errors.New("swtpmtest: the TPM is stopped")
	}
	tp, err := linuxudstpm.Open(s.Socket)
	if err != nil {
		return err
	}
	defer tp.Close()
	d := make([]byte, 32)
	rand.Read(d)
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d}}},
	}.Execute(tp)
	return err
}
