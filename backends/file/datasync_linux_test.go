package file_test

import (
	"os"
	"syscall"
)

// fdatasync is the baseline's fdatasync(2).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
