package file

import "golang.org/x/sys/unix"

// dataSync flushes fd's data to stable storage, and of its metadata only
// what reading the data back needs (not its timestamps): fdatasync(2). An
// update in place over blocks the file already has changes no such
// metadata, so this is one write of the data plus the drive's cache flush.
func dataSync(fd int) error { return unix.Fdatasync(fd) }
