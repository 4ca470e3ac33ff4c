package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// terminal is the operator's terminal, opened for a passphrase prompt.
type terminal interface {
	// ReadPassword shows prompt and reads one line without echo. On an
	// interrupt (ctx done) it restores the terminal and returns ctx.Err().
	ReadPassword(ctx context.Context, prompt string) ([]byte, error)
	// Confirm shows prompt and reads one line with echo; it reports
	// whether the line is "y" or "yes" (any case). An interrupt (ctx
	// done) returns ctx.Err().
	Confirm(ctx context.Context, prompt string) (bool, error)
	Close() error
}

// ttyTerminal prompts on the controlling terminal (/dev/tty, or the
// console on Windows), not on stdin/stdout: stdin may carry a session
// file ("import NAME -") and stdout may be a pipe.
type ttyTerminal struct {
	in, out *os.File
}

func (t *ttyTerminal) ReadPassword(ctx context.Context, prompt string) ([]byte, error) {
	fd := int(t.in.Fd())
	if !term.IsTerminal(fd) {
		return nil, errNoTerminal
	}
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	// Echo off before the prompt: nothing typed after it appears is
	// echoed. The state is restored below, and by ReadPassword.
	if err := echoOff(fd); err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	if _, err := fmt.Fprint(t.out, prompt); err != nil {
		_ = term.Restore(fd, state)
		return nil, fmt.Errorf("terminal: %w", err)
	}
	type result struct {
		p   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// x/term reads the line into buffers of its own that it does
		// not wipe; SECURITY.md lists this as a copy we cannot clear.
		p, err := term.ReadPassword(fd)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		// ReadPassword restored the state it found, echo off: give
		// back the one from before the prompt.
		_ = term.Restore(fd, state)
		fmt.Fprintln(t.out)
		if r.err != nil {
			return nil, fmt.Errorf("terminal: %w", r.err)
		}
		return r.p, nil
	case <-ctx.Done():
		// The reader goroutine stays blocked; the process is about to
		// exit. Give the operator their echo back first.
		_ = term.Restore(fd, state)
		fmt.Fprintln(t.out)
		return nil, ctx.Err()
	}
}

func (t *ttyTerminal) Confirm(ctx context.Context, prompt string) (bool, error) {
	if !term.IsTerminal(int(t.in.Fd())) {
		return false, errNoTerminal
	}
	if _, err := fmt.Fprint(t.out, prompt); err != nil {
		return false, fmt.Errorf("terminal: %w", err)
	}
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// One line, bounded: the answer is a word.
		var buf [maxConfirmLine]byte
		n := 0
		for n < len(buf) {
			k, err := t.in.Read(buf[n : n+1])
			if err != nil {
				done <- result{string(buf[:n]), err}
				return
			}
			if k == 1 && (buf[n] == '\n' || buf[n] == '\r') {
				break
			}
			n += k
		}
		done <- result{string(buf[:n]), nil}
	}()
	select {
	case r := <-done:
		if r.err != nil && r.err != io.EOF {
			return false, fmt.Errorf("terminal: %w", r.err)
		}
		return isYes(r.line), nil
	case <-ctx.Done():
		fmt.Fprintln(t.out)
		return false, ctx.Err()
	}
}

// isYes reports whether an answer to a [y/N] prompt is yes.
func isYes(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return s == "y" || s == "yes"
}

func (t *ttyTerminal) Close() error {
	err := t.in.Close()
	if t.out != t.in {
		if err2 := t.out.Close(); err == nil {
			err = err2
		}
	}
	return err
}
