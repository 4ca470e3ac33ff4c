//go:build freebsd || netbsd || openbsd || dragonfly

package file

import "golang.org/x/sys/unix"

// dataSync flushes fd's data to stable storage. golang.org/x/sys/unix
// does not wrap fdatasync(2) on these systems; fsync(2) is a superset.
func dataSync(fd int) error { return unix.Fsync(fd) }
