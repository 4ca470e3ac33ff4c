//go:build windows

package file

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/windows"
)

// This file is the reduced Windows side of the backend (see New):
// stored files are opened with FILE_FLAG_OPEN_REPARSE_POINT and checked
// on the handle, so a symbolic link or junction at a file path is refused
// without a race; folders are checked with Lstat before use, which a
// local attacker with write access to the parent could race. Windows
// keeps permissions in ACLs, which are not inspected, and cannot fsync a
// folder: NTFS journals the rename itself.

type sysDir struct {
	path string
}

func (d *sysDir) join(name string) string {
	if name == "." {
		return d.path
	}
	return d.path + `\` + name
}

func checkDirPath(path string, create bool) (created bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		created = err == nil
		fi, err = os.Lstat(path)
	}
	if err != nil {
		return false, err
	}
	switch {
	case fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0:
		return false, &UnsafeError{Path: path, Problem: "is a symbolic link or junction", Fix: "use the real path, or remove the link"}
	case !fi.IsDir():
		return false, &UnsafeError{Path: path, Problem: "is not a folder", Fix: "move it away, or choose another folder"}
	}
	return created, nil
}

func openRoot(path string, create bool) (*sysDir, error) {
	if _, err := checkDirPath(path, create); err != nil {
		return nil, err
	}
	return &sysDir{path: path}, nil
}

func (d *sysDir) subdir(name string, create bool) (*sysDir, error) {
	path := d.join(name)
	if _, err := checkDirPath(path, create); err != nil {
		return nil, err
	}
	return &sysDir{path: path}, nil
}

func (d *sysDir) close() error { return nil }

// sync is a no-op: Windows cannot flush a folder's entries.
func (d *sysDir) sync() error { return nil }

// openChecked opens name for reading without following a reparse point
// and checks the handle: a regular file, not a link. Sharing includes
// FILE_SHARE_DELETE so that a reader never makes a writer's rename fail.
func (d *sysDir) openChecked(name string) (*os.File, int64, error) {
	return d.openCheckedAccess(name, windows.GENERIC_READ)
}

func (d *sysDir) openCheckedAccess(name string, access uint32) (*os.File, int64, error) {
	path := d.join(name)
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, access,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		if err == windows.ERROR_FILE_NOT_FOUND || err == windows.ERROR_PATH_NOT_FOUND {
			err = fs.ErrNotExist
		}
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, 0, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	switch {
	case info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		windows.CloseHandle(h)
		return nil, 0, &UnsafeError{Path: path, Problem: "is a symbolic link or junction", Fix: "remove the link"}
	case info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		windows.CloseHandle(h)
		return nil, 0, &UnsafeError{Path: path, Problem: "is a folder, not a regular file", Fix: "move it away"}
	}
	size := int64(info.FileSizeHigh)<<32 | int64(info.FileSizeLow)
	return os.NewFile(uintptr(h), path), size, nil
}

func (d *sysDir) readFile(name string, limit int) ([]byte, error) {
	f, size, err := d.openChecked(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > int64(limit) {
		return nil, &tooLargeError{path: d.join(name), size: size, limit: limit}
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, &tooLargeError{path: d.join(name), size: int64(len(buf)), limit: limit}
			}
			buf = slices.Grow(buf, 4096)
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(buf) > limit {
		return nil, &tooLargeError{path: d.join(name), size: int64(len(buf)), limit: limit}
	}
	return buf, nil
}

type sysFile struct {
	f    *os.File
	path string
}

func (d *sysDir) createTemp(name string) (*sysFile, error) {
	f, err := os.OpenFile(d.join(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &sysFile{f: f, path: d.join(name)}, nil
}

// openFile opens the stored file name, checked as openChecked does, for
// reading (and with write, for an update in place).
func (d *sysDir) openFile(name string, write bool) (*sysFile, int64, error) {
	access := uint32(windows.GENERIC_READ)
	if write {
		access |= windows.GENERIC_WRITE
	}
	f, size, err := d.openCheckedAccess(name, access)
	if err != nil {
		return nil, 0, err
	}
	return &sysFile{f: f, path: d.join(name)}, size, nil
}

// pread fills p from offset off.
func (f *sysFile) pread(p []byte, off int64) error {
	_, err := f.f.ReadAt(p, off)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// pwritev writes parts one after the other at offset off.
func (f *sysFile) pwritev(parts [][]byte, off int64) error {
	for _, p := range parts {
		if _, err := f.f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}

// datasync is FlushFileBuffers (os.File.Sync), which flushes the data
// and the drive's cache.
func (f *sysFile) datasync() error { return f.f.Sync() }

func (f *sysFile) write(p []byte) error {
	_, err := f.f.Write(p)
	return err
}

func (f *sysFile) sync() error { return f.f.Sync() }

func (f *sysFile) close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

// unlinked reports false on Windows: no file is overwritten there before
// its removal (see openScrub).
func (f *sysFile) unlinked() bool { return false }

// otherLinks: hard links are not checked here.
func (f *sysFile) otherLinks() bool { return false }

// openScrub returns nil on Windows: a file open there cannot be removed
// (without FILE_SHARE_DELETE), so removed files are not overwritten
// first.
func (d *sysDir) openScrub(string) (*sysFile, int64) { return nil, 0 }

// keepRecords is false on Windows: an open handle (without
// FILE_SHARE_DELETE) would make another process's rename over the record
// fail, so a record is closed at the end of every write.
const keepRecords = false

// sameFile always reports false on Windows: a stored file is opened again
// for every write (see the package's Windows notes).
func (d *sysDir) sameFile(*sysFile, string) (int64, bool) { return 0, false }

func (d *sysDir) rename(oldname, newname string) error {
	return os.Rename(d.join(oldname), d.join(newname))
}

func (d *sysDir) remove(name string) error { return os.Remove(d.join(name)) }

type entry struct {
	name    string
	regular bool
}

func (d *sysDir) entries() ([]entry, error) {
	des, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	out := make([]entry, len(des))
	for i, de := range des {
		out[i] = entry{name: de.Name(), regular: de.Type().IsRegular()}
	}
	return out, nil
}

// sysLock is an open lock file, locked with LockFileEx.
type sysLock struct {
	f    *os.File
	path string
}

func (d *sysDir) openLock(name string) (*sysLock, error) {
	path := d.join(name)
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &UnsafeError{Path: path, Problem: "is not a regular file", Fix: "remove it"}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &sysLock{f: f, path: path}, nil
}

// sameLock reports whether the file at name in d is still the regular
// file l has open.
func (d *sysDir) sameLock(l *sysLock, name string) bool {
	fi, err := os.Lstat(d.join(name))
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	li, err := l.f.Stat()
	return err == nil && os.SameFile(fi, li)
}

func (l *sysLock) tryLock() (bool, error) {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(l.f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch err {
	case nil:
		return true, nil
	case windows.ERROR_LOCK_VIOLATION, windows.ERROR_IO_PENDING:
		return false, nil
	}
	return false, &fs.PathError{Op: "LockFileEx", Path: l.path, Err: err}
}

func (l *sysLock) unlock() error {
	ol := new(windows.Overlapped)
	if err := windows.UnlockFileEx(windows.Handle(l.f.Fd()), 0, 1, 0, ol); err != nil {
		return &fs.PathError{Op: "UnlockFileEx", Path: l.path, Err: err}
	}
	return nil
}

func (l *sysLock) close() error { return l.f.Close() }
