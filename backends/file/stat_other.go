//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package file

import "golang.org/x/sys/unix"

// fstatat is fstatat(2). (On Linux it leaves the timestamps alone: see
// stat_linux.go.)
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return unix.Fstatat(dirfd, name, st, flags)
}

// fstat is fstat(2).
func fstat(fd int, st *unix.Stat_t) error { return unix.Fstat(fd, st) }
