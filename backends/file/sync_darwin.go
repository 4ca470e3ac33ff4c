package file

import "golang.org/x/sys/unix"

// fullSync asks the drive itself to flush (F_FULLFSYNC): on macOS a plain
// fsync(2) only reaches the drive's cache. Filesystems without
// F_FULLFSYNC get fsync(2), as os.File.Sync does.
func fullSync(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0)
	if err == unix.ENOTSUP || err == unix.ENOTTY || err == unix.EINVAL {
		err = unix.Fsync(fd)
	}
	return err
}

// dataSync is fullSync: macOS has no fdatasync(2) worth the name (it does
// not flush the drive's cache), so an update in place is F_FULLFSYNCed.
func dataSync(fd int) error { return fullSync(fd) }
