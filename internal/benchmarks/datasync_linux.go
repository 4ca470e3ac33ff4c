package benchmarks

import (
	"os"

	"golang.org/x/sys/unix"
)

// dataSync is fdatasync(2).
func dataSync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
