package file

import "golang.org/x/sys/unix"

// statFields is what the checks of this package read from a stat: the
// kind and permission bits, the owner, the identity, the link count and
// the size. Timestamps are not among them, and are not asked for.
//
// Asking matters on Linux 6.13 and later: a stat that reports a file's
// change or modification time marks the time as seen, so the next write
// to the file takes a new fine-grained timestamp instead of leaving an
// unchanged coarse one (multigrain timestamps). On ext4 without a
// journal, a changed timestamp is an inode update that fdatasync(2)
// writes too: checking the record before each write with a full stat
// made every write of a record two synchronous writes (the slot and the
// inode table block) instead of one most of the time, as for any file
// nobody stats. statx(2) with a mask without times reports the same
// fields and marks nothing.
const statFields = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_UID |
	unix.STATX_INO | unix.STATX_NLINK | unix.STATX_SIZE

// fstatat fills st's kind and permission bits, owner, identity (Dev,
// Ino), link count and size for name in the folder dirfd (flags as for
// fstatat(2), AT_EMPTY_PATH with an empty name for dirfd itself), without
// asking for the timestamps. Where statx(2) is missing (Linux before
// 4.11, or refused by a seccomp filter), or a filesystem does not report
// every field, it falls back to fstatat(2).
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	var sx unix.Statx_t
	err := unix.Statx(dirfd, name, flags|unix.AT_STATX_SYNC_AS_STAT, statFields, &sx)
	if err == unix.ENOSYS || err == unix.EPERM || (err == nil && sx.Mask&statFields != statFields) {
		return unix.Fstatat(dirfd, name, st, flags)
	}
	if err != nil {
		return err
	}
	// Field by field: their types differ between architectures.
	*st = unix.Stat_t{}
	set(&st.Dev, unix.Mkdev(sx.Dev_major, sx.Dev_minor))
	set(&st.Ino, sx.Ino)
	set(&st.Nlink, uint64(sx.Nlink))
	set(&st.Mode, uint64(sx.Mode))
	set(&st.Uid, uint64(sx.Uid))
	set(&st.Size, sx.Size)
	return nil
}

// fstat is fstatat of the open file fd itself.
func fstat(fd int, st *unix.Stat_t) error {
	return fstatat(fd, "", st, unix.AT_EMPTY_PATH)
}

// set stores v in *p, whatever p's integer type.
func set[T ~uint32 | ~uint64 | ~int32 | ~int64](p *T, v uint64) { *p = T(v) }
