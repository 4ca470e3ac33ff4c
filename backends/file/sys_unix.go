//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the POSIX side of the backend: every file is reached
// through an open folder descriptor with openat(2) and friends, so that a
// path swapped after New (a folder replaced by a symbolic link) cannot
// redirect a write, and every file is checked with fstat(2) on the
// descriptor that was opened (O_NOFOLLOW), never by a stat of the path
// before opening it.

const (
	// openDirFlags opens a folder without following a symbolic link at
	// its last component.
	openDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// openReadFlags opens a stored file. O_NONBLOCK keeps a FIFO planted
	// at the path from blocking the open; fstat then refuses it.
	openReadFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	// openTempFlags creates a temp file that did not exist.
	openTempFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// openRecordFlags opens a stored file for an update in place.
	openRecordFlags = unix.O_RDWR | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	// openLockFlags opens a lock file; flock(2) needs no write access.
	openLockFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
)

// shellQuote quotes a path for a fix command a user can paste into a
// POSIX shell.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+@:,=", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sysDir is an open folder.
type sysDir struct {
	fd   int
	path string // for messages only
	euid int
}

// retry repeats a system call interrupted by a signal.
func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// isSymlinkErrno reports whether err is what open(2) with O_NOFOLLOW
// returns for a symbolic link: ELOOP (Linux, macOS), EMLINK (FreeBSD,
// NetBSD). Any other error refuses the path as well, with a plainer
// message.
func isSymlinkErrno(err error) bool {
	return err == unix.ELOOP || err == unix.EMLINK
}

// explain turns an error from opening path into an *UnsafeError when the
// reason is a symbolic link or a file of the wrong kind. The lstat here
// only words the message: the decision was made by the open itself.
func explain(path string, err error, wantDir bool) error {
	if isSymlinkErrno(err) || (wantDir && err == unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFLNK:
				return &UnsafeError{Path: path, Problem: "is a symbolic link", Fix: "use the real path, or remove the link: rm " + shellQuote(path)}
			case unix.S_IFDIR:
			default:
				if wantDir {
					return &UnsafeError{Path: path, Problem: "is " + kindName(uint32(st.Mode)) + ", not a folder", Fix: "move it away, or choose another folder"}
				}
			}
		}
		if isSymlinkErrno(err) {
			return &UnsafeError{Path: path, Problem: "is a symbolic link", Fix: "use the real path, or remove the link: rm " + shellQuote(path)}
		}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

func kindName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a folder"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "not a regular file"
}

// checkStat refuses a file or folder that is not of the wanted kind, is
// owned by someone else than euid, or is accessible by group or others.
func checkStat(path string, st *unix.Stat_t, euid int, wantDir bool) error {
	mode := uint32(st.Mode)
	want, what, perm := uint32(unix.S_IFREG), "a regular file", "600"
	if wantDir {
		want, what, perm = unix.S_IFDIR, "a folder", "700"
	}
	if mode&unix.S_IFMT != want {
		return &UnsafeError{Path: path, Problem: "is " + kindName(mode) + ", not " + what, Fix: "move it away"}
	}
	if int(st.Uid) != euid {
		return &UnsafeError{
			Path:    path,
			Problem: fmt.Sprintf("is owned by uid %d, not by this process's uid %d", st.Uid, euid),
			Fix:     fmt.Sprintf("chown %d %s, or use a folder you own", euid, shellQuote(path)),
		}
	}
	if mode&0o077 != 0 {
		return &UnsafeError{
			Path:    path,
			Problem: fmt.Sprintf("is accessible by group or others (mode %04o)", mode&0o7777),
			Fix:     "chmod " + perm + " " + shellQuote(path),
		}
	}
	return nil
}

// openRoot opens the backend's folder, creating it (0700, whatever the
// umask) if it is missing and create is set.
func openRoot(path string, create bool) (*sysDir, error) {
	euid := unix.Geteuid()
	var fd int
	err := retry(func() (err error) { fd, err = unix.Open(path, openDirFlags, 0); return })
	created := false
	if err == unix.ENOENT && create {
		if err := checkParents(path, euid); err != nil { // ancestors_unix.go
			return nil, err
		}
		if err = unix.Mkdir(path, 0o700); err != nil && err != unix.EEXIST {
			return nil, &fs.PathError{Op: "mkdir", Path: path, Err: err}
		}
		created = err == nil
		if created {
			// Make the new folder's entry in its parent durable, as
			// every later write makes its own entries durable.
			if err := syncPath(filepath.Dir(path)); err != nil {
				return nil, &fs.PathError{Op: "fsync", Path: filepath.Dir(path), Err: err}
			}
		}
		err = retry(func() (err error) { fd, err = unix.Open(path, openDirFlags, 0); return })
	}
	if err != nil {
		return nil, explain(path, err, true)
	}
	d := &sysDir{fd: fd, path: path, euid: euid}
	if err := d.checkSelf(created); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := checkAncestors(path, fd, euid); err != nil { // ancestors_unix.go
		unix.Close(fd)
		return nil, err
	}
	return d, nil
}

// syncPath fsyncs the folder at path.
func syncPath(path string) error {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return retry(func() error { return fullSync(fd) })
}

// checkSelf checks the open folder; a folder we just created gets its
// mode set to 0700 first (mkdir(2) applies the umask).
func (d *sysDir) checkSelf(created bool) error {
	if created {
		if err := unix.Fchmod(d.fd, 0o700); err != nil {
			return &fs.PathError{Op: "chmod", Path: d.path, Err: err}
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: d.path, Err: err}
	}
	return checkStat(d.path, &st, d.euid, true)
}

func (d *sysDir) join(name string) string {
	if name == "." {
		return d.path
	}
	return d.path + "/" + name
}

// subdir opens (and with create, makes) the folder name inside d.
func (d *sysDir) subdir(name string, create bool) (*sysDir, error) {
	path := d.join(name)
	var fd int
	err := retry(func() (err error) { fd, err = unix.Openat(d.fd, name, openDirFlags, 0); return })
	created := false
	if err == unix.ENOENT && create {
		if err = unix.Mkdirat(d.fd, name, 0o700); err != nil && err != unix.EEXIST {
			return nil, &fs.PathError{Op: "mkdir", Path: path, Err: err}
		}
		created = err == nil
		if created {
			if err := d.sync(); err != nil {
				return nil, &fs.PathError{Op: "fsync", Path: d.path, Err: err}
			}
		}
		err = retry(func() (err error) { fd, err = unix.Openat(d.fd, name, openDirFlags, 0); return })
	}
	if err != nil {
		return nil, explain(path, err, true)
	}
	s := &sysDir{fd: fd, path: path, euid: d.euid}
	if err := s.checkSelf(created); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func (d *sysDir) close() error { return unix.Close(d.fd) }

// sync flushes the folder's entries to stable storage.
func (d *sysDir) sync() error { return retry(func() error { return fullSync(d.fd) }) }

// openChecked opens name for reading without following a symbolic link
// and checks the descriptor it got: a regular file owned by us that
// nobody else can access.
func (d *sysDir) openChecked(name string) (fd int, size int64, err error) {
	return d.openCheckedFlags(name, openReadFlags)
}

func (d *sysDir) openCheckedFlags(name string, flags int) (fd int, size int64, err error) {
	fd, st, err := d.openCheckedStat(name, flags)
	return fd, st.Size, err
}

// openCheckedStat is openCheckedFlags returning the opened file's fstat.
func (d *sysDir) openCheckedStat(name string, flags int) (fd int, st unix.Stat_t, err error) {
	err = retry(func() (err error) { fd, err = unix.Openat(d.fd, name, flags, 0); return })
	if err != nil {
		if err == unix.ENOENT {
			return -1, st, &fs.PathError{Op: "open", Path: d.join(name), Err: err}
		}
		if err == unix.EISDIR { // opened for writing
			return -1, st, &UnsafeError{Path: d.join(name), Problem: "is a folder, not a regular file", Fix: "move it away"}
		}
		return -1, st, explain(d.join(name), err, false)
	}
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, &fs.PathError{Op: "fstat", Path: d.join(name), Err: err}
	}
	if err := checkStat(d.join(name), &st, d.euid, false); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

// readFile reads name whole, refusing a file over limit bytes before
// allocating for it.
func (d *sysDir) readFile(name string, limit int) ([]byte, error) {
	fd, size, err := d.openChecked(name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if size > int64(limit) {
		return nil, &tooLargeError{path: d.join(name), size: size, limit: limit}
	}
	// One spare byte detects a file that grew since fstat (none of
	// ours does: the backend never writes a stored file in place).
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, &tooLargeError{path: d.join(name), size: int64(len(buf)), limit: limit}
			}
			buf = slices.Grow(buf, 4096)
		}
		var m int
		err := retry(func() (err error) { m, err = unix.Read(fd, buf[len(buf):cap(buf)]); return })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: d.join(name), Err: err}
		}
		if m == 0 {
			break
		}
		buf = buf[:len(buf)+m]
		if int64(len(buf)) == size && len(buf) < cap(buf) {
			// All fstat promised, in a short read: the end of the
			// file (the backend never writes a stored file in place,
			// so it cannot be growing), without one more read(2).
			break
		}
	}
	if len(buf) > limit {
		return nil, &tooLargeError{path: d.join(name), size: int64(len(buf)), limit: limit}
	}
	// A file removed while it was read may have been overwritten with
	// zeros by its remover (see openScrub): it is gone, not a blob.
	if gone, _ := fdUnlinked(fd); gone {
		return nil, &fs.PathError{Op: "read", Path: d.join(name), Err: fs.ErrNotExist}
	}
	return buf, nil
}

// fdUnlinked reports whether the file open as fd has no name left.
func fdUnlinked(fd int) (bool, error) {
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return false, err
	}
	return st.Nlink == 0, nil
}

// unlinked reports whether f's file has been removed (or renamed over)
// since it was opened: a reader that met a file being overwritten with
// zeros by whoever removed it (see openScrub) opens the path again.
func (f *sysFile) unlinked() bool {
	gone, err := fdUnlinked(f.fd)
	return err == nil && gone
}

// openScrub opens the stored, temp or previous-generation file name for
// writing, checked as openFile does, so that its remover can overwrite
// its bytes with zeros once the removal is durable (see victim). It
// returns nil if the file cannot be opened so (missing, a symbolic link,
// not a regular file of ours): it is then removed without that.
func (d *sysDir) openScrub(name string) (*sysFile, int64) {
	f, size, err := d.openFile(name, true)
	if err != nil {
		return nil, 0
	}
	return f, size
}

// sysFile is a temp file being written, or a stored file open for
// reading (or, with write, for an update in place).
type sysFile struct {
	fd       int
	path     string // for messages only
	dev, ino uint64 // a stored file's identity, for sameFile
	nlink    uint64 // its link count when last checked (openFile, sameFile)
}

// otherLinks reports whether another name was linking to f's file when
// it was last checked: an update then goes through a rewrite (a new
// file), so that a write in place never changes the bytes under a name
// the backend does not own (a hard-linked copy someone made).
func (f *sysFile) otherLinks() bool { return f.nlink > 1 }

// openFile opens the stored file name, checked as openChecked does, and
// returns it with its size.
func (d *sysDir) openFile(name string, write bool) (*sysFile, int64, error) {
	flags := openReadFlags
	if write {
		flags = openRecordFlags
	}
	fd, st, err := d.openCheckedStat(name, flags)
	if err != nil {
		return nil, 0, err
	}
	return &sysFile{fd: fd, path: d.join(name), dev: uint64(st.Dev), ino: uint64(st.Ino), nlink: uint64(st.Nlink)}, st.Size, nil
}

// keepRecords: a writer keeps each record open between its updates
// (reccache.go).
const keepRecords = true

// sameFile reports whether the file at name in d is still the stored file
// f has open (opened by openFile) and still passes its checks (a regular
// file, ours, 0600), and returns its size: one fstatat(2) without
// following a symbolic link. A file removed, renamed over (a rewrite by
// another process), replaced by a symbolic link or anything else, or
// opened up to others since f was opened reports false; the caller then
// opens the path again with openFile, which refuses it as on a first
// open. The stat does not ask for timestamps (stat_linux.go: asking
// would make the write that follows cost an inode write on some
// filesystems). The inode number cannot have been reused for another file: f
// holds the inode open.
func (d *sysDir) sameFile(f *sysFile, name string) (int64, bool) {
	var st unix.Stat_t
	if err := retry(func() error { return fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return 0, false
	}
	if uint64(st.Dev) != f.dev || uint64(st.Ino) != f.ino || checkStat(f.path, &st, d.euid, false) != nil {
		return 0, false
	}
	f.nlink = uint64(st.Nlink)
	return st.Size, true
}

// pread fills p from offset off; a file shorter than that is an error
// (io.ErrUnexpectedEOF).
func (f *sysFile) pread(p []byte, off int64) error {
	for len(p) > 0 {
		var n int
		err := retry(func() (err error) { n, err = unix.Pread(f.fd, p, off); return })
		if err != nil {
			return &fs.PathError{Op: "read", Path: f.path, Err: err}
		}
		if n == 0 {
			return &fs.PathError{Op: "read", Path: f.path, Err: io.ErrUnexpectedEOF}
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// datasync flushes the file's data (and only the metadata needed to read
// it back) to stable storage: fdatasync(2), F_FULLFSYNC on macOS.
func (f *sysFile) datasync() error { return retry(func() error { return dataSync(f.fd) }) }

// createTemp creates name exclusively, mode 0600 whatever the umask.
func (d *sysDir) createTemp(name string) (*sysFile, error) {
	var fd int
	path := d.join(name)
	err := retry(func() (err error) { fd, err = unix.Openat(d.fd, name, openTempFlags, 0o600); return })
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: d.join(name), Err: err}
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		unix.Close(fd)
		unix.Unlinkat(d.fd, name, 0)
		return nil, &fs.PathError{Op: "chmod", Path: d.join(name), Err: err}
	}
	return &sysFile{fd: fd, path: path}, nil
}

func (f *sysFile) write(p []byte) error {
	for len(p) > 0 {
		var n int
		err := retry(func() (err error) { n, err = unix.Write(f.fd, p); return })
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		p = p[n:]
	}
	return nil
}

func (f *sysFile) sync() error { return retry(func() error { return fullSync(f.fd) }) }

// close closes the file once; later calls are no-ops.
func (f *sysFile) close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return err
}

func (d *sysDir) rename(oldname, newname string) error {
	if err := unix.Renameat(d.fd, oldname, d.fd, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(oldname), New: d.join(newname), Err: err}
	}
	return nil
}

// remove removes the file name (never a folder).
func (d *sysDir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// entry is a folder entry: its name and whether it is a regular file.
type entry struct {
	name    string
	regular bool
}

// entries lists the folder; entries of unknown type are lstat'ed.
func (d *sysDir) entries() ([]entry, error) {
	var fd int
	err := retry(func() (err error) { fd, err = unix.Openat(d.fd, ".", openDirFlags, 0); return })
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]entry, len(des))
	for i, de := range des {
		out[i] = entry{name: de.Name(), regular: de.Type().IsRegular()}
	}
	return out, nil
}

// sysLock is an open lock file.
type sysLock struct {
	fd       int
	path     string
	dev, ino uint64 // the file's identity, for sameLock
}

// openLock opens (creating it 0600 if needed) the lock file name.
func (d *sysDir) openLock(name string) (*sysLock, error) {
	var fd int
	path := d.join(name)
	// Create it exclusively first, so that a file we made gets its mode
	// fixed whatever the umask, and one we did not make is only checked.
	err := retry(func() (err error) {
		fd, err = unix.Openat(d.fd, name, openLockFlags|unix.O_CREAT|unix.O_EXCL, 0o600)
		return
	})
	if err == nil {
		if err := unix.Fchmod(fd, 0o600); err != nil {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "chmod", Path: path, Err: err}
		}
	} else if err == unix.EEXIST {
		err = retry(func() (err error) { fd, err = unix.Openat(d.fd, name, openLockFlags, 0); return })
	}
	if err != nil {
		return nil, explain(path, err, false)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := checkStat(path, &st, d.euid, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &sysLock{fd: fd, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// sameLock reports whether the file at name in d is still the file l has
// open and still passes the checks of openLock (a regular file, ours,
// 0600): one fstatat(2) without following a symbolic link. A lock file
// removed, replaced (by a symbolic link, a folder, a FIFO, another file)
// or opened up to others since l was opened reports false; the caller
// then opens it again with openLock, which refuses it as before.
func (d *sysDir) sameLock(l *sysLock, name string) bool {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return false
	}
	if uint64(st.Dev) != l.dev || uint64(st.Ino) != l.ino {
		return false
	}
	return checkStat(l.path, &st, d.euid, false) == nil
}

// tryLock takes the lock without waiting; false means someone holds it.
func (l *sysLock) tryLock() (bool, error) {
	err := retry(func() error { return unix.Flock(l.fd, unix.LOCK_EX|unix.LOCK_NB) })
	switch err {
	case nil:
		return true, nil
	case unix.EWOULDBLOCK:
		return false, nil
	}
	return false, &fs.PathError{Op: "flock", Path: l.path, Err: err}
}

func (l *sysLock) unlock() error {
	if err := unix.Flock(l.fd, unix.LOCK_UN); err != nil {
		return &fs.PathError{Op: "unlock", Path: l.path, Err: err}
	}
	return nil
}

func (l *sysLock) close() error { return unix.Close(l.fd) }
