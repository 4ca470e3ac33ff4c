package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// passphraseEnv is the environment variable read when no flag names a
// passphrase source. A Go string cannot be wiped, and the environment
// of a process is readable by its owner in /proc: SECURITY.md says so.
const passphraseEnv = "VAULTCTL_PASSPHRASE"

// passphraseSource is where a command gets a passphrase from, in the
// order of the contract: --passphrase-file, --passphrase-fd,
// $VAULTCTL_PASSPHRASE, then a prompt on the terminal. A passphrase is
// never taken from an argument: argv is visible to every local user.
type passphraseSource struct {
	file   string              // --passphrase-file, "" if unset
	fd     int                 // --passphrase-fd, -1 if unset
	cred   string              // --passphrase-credential, "" if unset
	getenv func(string) string // os.Getenv, replaceable in tests
	// openTerminal opens the controlling terminal for a prompt.
	openTerminal func() (terminal, error)
	warn         io.Writer // where warnings go (stderr); nil: nowhere
	used         bool      // the fd or file has been consumed
}

// explicit reports whether a non-interactive source was given.
func (s *passphraseSource) explicit() bool {
	return s.file != "" || s.fd >= 0 || s.cred != "" || s.getenv(passphraseEnv) != ""
}

// errNoTerminal is returned when a prompt is needed and there is no
// terminal to ask on (a script, a service, CI).
var errNoTerminal = &usageError{msg: "no passphrase given and no terminal to ask on: " +
	"use --passphrase-file FILE, --passphrase-fd N, --passphrase-credential NAME or $" + passphraseEnv}

// get returns the passphrase, which the caller must wipe. prompt is
// shown on the terminal when there is no other source; with confirm the
// terminal asks twice and refuses a mismatch.
func (s *passphraseSource) get(ctx context.Context, prompt string, confirm bool) ([]byte, error) {
	switch {
	case s.file != "" && s.fd >= 0:
		return nil, usagef("--passphrase-file and --passphrase-fd both given: use one")
	case s.cred != "" && (s.file != "" || s.fd >= 0):
		return nil, usagef("--passphrase-credential and --passphrase-file or --passphrase-fd both given: use one")
	case s.cred != "":
		return readCredential(s.cred)
	case s.file != "":
		return readPassphraseFile(s.file, s.warn)
	case s.fd >= 0:
		if s.used {
			return nil, usagef("--passphrase-fd %d was already read: it can give one passphrase", s.fd)
		}
		s.used = true
		f := os.NewFile(uintptr(s.fd), fmt.Sprintf("fd %d", s.fd))
		if f == nil {
			return nil, usagef("--passphrase-fd %d is not an open file descriptor", s.fd)
		}
		defer f.Close()
		p, err := readPassphrase(f, fmt.Sprintf("--passphrase-fd %d", s.fd))
		return p, err
	}
	if v := s.getenv(passphraseEnv); v != "" {
		if len(v) > maxPassphraseLen {
			return nil, fmt.Errorf("$%s is longer than %d bytes", passphraseEnv, maxPassphraseLen)
		}
		return []byte(v), nil
	}
	return promptPassphrase(ctx, s.openTerminal, prompt, confirm)
}

// promptPassphrase asks on the terminal, without echo.
func promptPassphrase(ctx context.Context, open func() (terminal, error), prompt string, confirm bool) ([]byte, error) {
	if open == nil {
		return nil, errNoTerminal
	}
	t, err := open()
	if err != nil {
		return nil, errNoTerminal
	}
	defer t.Close()
	p, err := t.ReadPassword(ctx, prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase refused: type a passphrase, nothing was changed")
	}
	if len(p) > maxPassphraseLen {
		secmem.Wipe(p)
		return nil, fmt.Errorf("passphrase longer than %d bytes refused", maxPassphraseLen)
	}
	if !confirm {
		return p, nil
	}
	again, err := t.ReadPassword(ctx, "Repeat "+lowerFirst(prompt))
	if err != nil {
		secmem.Wipe(p)
		return nil, err
	}
	same := subtle.ConstantTimeCompare(p, again) == 1
	secmem.Wipe(again)
	if !same {
		secmem.Wipe(p)
		return nil, errors.New("the two passphrases do not match: nothing was changed, run the command again")
	}
	return p, nil
}

func lowerFirst(s string) string {
	if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

// readPassphraseFile reads a passphrase from a file, without one
// trailing newline. A file that others can read gets a warning on warn
// (it still works: refusing would break scripts at the worst moment).
func readPassphraseFile(name string, warn io.Writer) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, withHint(fmt.Errorf("--passphrase-file: %w", err), "check the path")
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && warn != nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "vaultctl: warning: passphrase file %s is readable by others (mode %#o): chmod 600 %s\n", name, fi.Mode().Perm(), shQuote(name))
	}
	return readPassphrase(f, "--passphrase-file "+name)
}

// readPassphrase reads at most maxPassphraseLen bytes plus a newline
// from r into one buffer (no copies left behind) and strips one
// trailing "\n" or "\r\n".
func readPassphrase(r io.Reader, what string) ([]byte, error) {
	buf := make([]byte, maxPassphraseLen+3)
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			secmem.Wipe(buf)
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	p := buf[:n]
	if len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
		if len(p) > 0 && p[len(p)-1] == '\r' {
			p = p[:len(p)-1]
		}
	}
	if len(p) > maxPassphraseLen {
		secmem.Wipe(buf)
		return nil, fmt.Errorf("%s: passphrase longer than %d bytes: is it the right file?", what, maxPassphraseLen)
	}
	if len(p) == 0 {
		secmem.Wipe(buf)
		return nil, fmt.Errorf("%s: empty passphrase: write the passphrase into it", what)
	}
	return p, nil
}
