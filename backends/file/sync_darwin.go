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
