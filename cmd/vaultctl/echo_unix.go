//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import "golang.org/x/sys/unix"

// echoOff turns the terminal's echo off before the prompt is shown, so
// that a passphrase typed as soon as the prompt appears (or before: type-
// ahead) is never echoed. x/term's ReadPassword turns echo off only once
// it starts reading, after the prompt: a fast typist, or a loaded machine,
// had the first characters echoed (TestPromptDoesNotEcho caught it).
func echoOff(fd int) error {
	t, err := unix.IoctlGetTermios(fd, echoGetTermios)
	if err != nil {
		return err
	}
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	return unix.IoctlSetTermios(fd, echoSetTermios, t)
}
