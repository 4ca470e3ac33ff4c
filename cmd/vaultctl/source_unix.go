//go:build unix

package main

import (
	"errors"
	"syscall"
)

// oNoFollow makes open(2) fail on a symlink; oNonBlock keeps a FIFO planted
// at the path from blocking the open.
const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonBlock = syscall.O_NONBLOCK
)

// isSymlinkErr reports what open(2) with O_NOFOLLOW returns for a symlink.
func isSymlinkErr(err error) bool { return errors.Is(err, syscall.ELOOP) }
