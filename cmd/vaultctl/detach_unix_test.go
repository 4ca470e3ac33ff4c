//go:build unix

package main

import (
	"context"
	"os"
	"syscall"
	"testing"
)

// detachedAttr starts a child in a new session, without a controlling
// terminal: opening /dev/tty fails there, as under cron or systemd.
func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

func TestPassphraseFD(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write([]byte("via-fd\n")); w.Close() }()
	defer r.Close()
	// The source closes the descriptor it reads: give it its own.
	dup, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	src := &passphraseSource{fd: dup, getenv: func(string) string { return "" }}
	p, err := src.get(context.Background(), "", false)
	if err != nil || string(p) != "via-fd" {
		t.Fatalf("fd: %q, %v", p, err)
	}
	if _, err := src.get(context.Background(), "", false); exitCode(err) != exitUsage {
		t.Fatalf("second read of the fd: %v", err)
	}
}
