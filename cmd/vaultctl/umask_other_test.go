//go:build !unix

package main

import (
	"fmt"
	"os"
)

func withUmaskMain() {
	fmt.Fprintln(os.Stderr, "with-umask: no umask on this platform")
	os.Exit(2)
}
