//go:build unix

package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// withUmaskMain is "with-umask MODE vaultctl ARGS...": it sets the
// process umask, then runs vaultctl's Main in this same process.
func withUmaskMain() {
	if len(os.Args) < 3 || os.Args[2] != "vaultctl" {
		fmt.Fprintln(os.Stderr, "usage: with-umask MODE vaultctl [ARGS...]")
		os.Exit(2)
	}
	mode, err := strconv.ParseUint(os.Args[1], 8, 32)
	if err != nil {
		fmt.Fprintln(os.Stderr, "with-umask: bad mode:", err)
		os.Exit(2)
	}
	unix.Umask(int(mode))
	os.Args = os.Args[2:]
	os.Exit(Main())
}
