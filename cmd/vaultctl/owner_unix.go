//go:build unix

package main

import (
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// foreignOwner returns the owner of fi when it is not this process's user.
func foreignOwner(fi fs.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return "", false
	}
	return strconv.FormatUint(uint64(st.Uid), 10), true
}
