package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/vault"
)

func TestExitCodes(t *testing.T) {
	perm := &backends.OpError{Backend: "file", Op: "get", Kind: backends.ErrPermission}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{usagef("bad"), 2},
		{fmt.Errorf("wrap: %w", backends.ErrNotFound), 3},
		{vault.ErrNotFound, 3},
		{withHint(vault.ErrWrongKey, "try again"), 4},
		{vault.ErrCorrupt, 5},
		{vault.ErrUnsupportedVersion, 5},
		{vault.ErrPolicy, 5},
		{&keychainError{err: backends.ErrUnavailable}, 6},
		{&keychainError{err: backends.ErrLocked}, 6},
		{perm, 7},
		// A permission problem wins over what it caused.
		{errors.Join(vault.ErrCorrupt, perm), 7},
		// Redis being down is not a keychain problem.
		{fmt.Errorf("redis: %w", backends.ErrUnavailable), 1},
		{&codedError{err: perm, code: 1}, 1},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\nc\n"); got != "a; b; c" {
		t.Fatalf("oneLine = %q", got)
	}
}

func TestReadPassphrase(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      string
	}{
		{"pw\n", "pw", ""},
		{"pw\r\n", "pw", ""},
		{"pw", "pw", ""},
		{"pw\n\n", "pw\n", ""},
		{" pw \n", " pw ", ""},
		{"\n", "", "empty"},
		{"", "", "empty"},
		{strings.Repeat("x", maxPassphraseLen) + "\n", strings.Repeat("x", maxPassphraseLen), ""},
		{strings.Repeat("x", maxPassphraseLen+1), "", "longer than"},
		{strings.Repeat("x", 1<<20), "", "longer than"},
	} {
		got, err := readPassphrase(strings.NewReader(tc.in), "test")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("readPassphrase(%.20q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("readPassphrase(%.20q) = %.20q, %v; want %.20q", tc.in, got, err, tc.want)
		}
	}
}

// fakeTerminal answers prompts from a list; it stands in for a terminal
// only in unit tests (pty_test.go drives a real one).
type fakeTerminal struct {
	answers []string
	prompts []string
}

func (f *fakeTerminal) ReadPassword(_ context.Context, prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return nil, io.EOF
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func (f *fakeTerminal) Confirm(ctx context.Context, prompt string) (bool, error) {
	p, err := f.ReadPassword(ctx, prompt)
	return isYes(string(p)), err
}

func (f *fakeTerminal) Close() error { return nil }

func TestPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()

	term := &fakeTerminal{answers: []string{"typed", "typed", "a", "b"}}
	src := &passphraseSource{fd: -1, getenv: getenv, openTerminal: func() (terminal, error) { return term, nil }}
	if p, err := src.get(ctx, "New passphrase: ", true); err != nil || string(p) != "typed" {
		t.Fatalf("prompt: %q, %v", p, err)
	}
	if len(term.prompts) != 2 || term.prompts[1] != "Repeat new passphrase: " {
		t.Fatalf("prompts %q", term.prompts)
	}
	if _, err := src.get(ctx, "New passphrase: ", true); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("mismatch: %v", err)
	}

	env[passphraseEnv] = "from-env"
	if p, err := src.get(ctx, "", false); err != nil || string(p) != "from-env" {
		t.Fatalf("env: %q, %v", p, err)
	}
	if !src.explicit() {
		t.Fatal("env source not explicit")
	}
	src.file = file
	if p, err := src.get(ctx, "", false); err != nil || string(p) != "from-file" {
		t.Fatalf("file over env: %q, %v", p, err)
	}

	// No terminal: a usage error that names the alternatives.
	src = &passphraseSource{fd: -1, getenv: func(string) string { return "" },
		openTerminal: func() (terminal, error) { return nil, errors.New("no tty") }}
	_, err := src.get(ctx, "", false)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--passphrase-fd") {
		t.Fatalf("no terminal: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	env[dirEnv] = "/from/env"
	if d, _ := defaultDir(getenv); d != "/from/env" {
		t.Fatalf("VAULTCTL_DIR: %s", d)
	}
	delete(env, dirEnv)
	if runtime.GOOS != "linux" {
		return
	}
	env["XDG_DATA_HOME"] = "/xdg"
	env["HOME"] = "/home/u"
	if d, _ := defaultDir(getenv); d != "/xdg/sessionvault" {
		t.Fatalf("XDG_DATA_HOME: %s", d)
	}
	env["XDG_DATA_HOME"] = "relative/ignored"
	if d, _ := defaultDir(getenv); d != "/home/u/.local/share/sessionvault" {
		t.Fatalf("relative XDG_DATA_HOME: %s", d)
	}
	delete(env, "XDG_DATA_HOME")
	delete(env, "HOME")
	if _, err := defaultDir(getenv); err == nil {
		t.Fatal("no HOME: no error")
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	rm := fs.Bool("remove-source", false, "")
	pos, err := parseInterspersed(fs, []string{"name", "file", "--remove-source", "--", "--not-a-flag"})
	if err != nil || !*rm || strings.Join(pos, ",") != "name,file,--not-a-flag" {
		t.Fatalf("pos %q rm %v err %v", pos, *rm, err)
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &progress{w: &buf, tty: false, label: "rotate-key", total: 1000, start: now, now: func() time.Time { return now }}
	p.update(10)
	if buf.Len() != 0 {
		t.Fatalf("a short run printed progress: %q", buf.String())
	}
	now = now.Add(3 * time.Second)
	p.update(500)
	if buf.String() != "rotate-key: 500/1000\n" {
		t.Fatalf("line %q", buf.String())
	}
	buf.Reset()
	p = &progress{w: &buf, tty: true, label: "rotate-key", total: 100, start: now, now: func() time.Time { return now }}
	p.update(50)
	p.update(100)
	p.finish()
	if !strings.Contains(buf.String(), "\rrotate-key [===============               ] 50/100") || !strings.HasSuffix(buf.String(), "100/100\n") {
		t.Fatalf("bar %q", buf.String())
	}
}
