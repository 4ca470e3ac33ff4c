//go:build linux || freebsd || netbsd || openbsd || dragonfly

package file

import "golang.org/x/sys/unix"

// fullSync flushes fd's data and metadata to stable storage.
func fullSync(fd int) error { return unix.Fsync(fd) }
