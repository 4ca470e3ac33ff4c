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

// fileKey identifies a file on its device.
type fileKey struct{ dev, ino uint64 }

// linkCount returns fi's identity and hard link count.
func linkCount(fi fs.FileInfo) (fileKey, uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, 0, false
	}
	return fileKey{uint64(st.Dev), uint64(st.Ino)}, uint64(st.Nlink), true
}
