package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// errSourceSwapped: the path of an import source named another file by
// the time it was to be removed.
var errSourceSwapped = errors.New("the path was swapped for another file")

// sourceFile is an import source opened for --remove-source: the one
// descriptor it is read, zeroed and flushed through, and the path it was
// opened by. The descriptor is opened with O_NOFOLLOW (a symlink at the
// path is refused) and checked with fstat to be the regular file the path
// named (lstat) at that moment; at removal the path is checked again
// against the descriptor, so that a file renamed or linked in its place
// since is never zeroed nor deleted.
type sourceFile struct {
	f    *os.File
	name string
	info fs.FileInfo // fstat at open
}

// openSource opens name for reading and, later, zeroing.
func openSource(name string) (*sourceFile, error) {
	before, err := os.Lstat(name)
	if err != nil {
		return nil, withHint(fmt.Errorf("import: %w", err), "check the path")
	}
	if before.Mode()&fs.ModeSymlink != 0 {
		return nil, usagef("import: --remove-source: %s is a symbolic link: name the file itself (nothing was read)", name)
	}
	if !before.Mode().IsRegular() {
		return nil, usagef("import: --remove-source: %s is not a regular file", name)
	}
	f, err := os.OpenFile(name, os.O_RDWR|oNoFollow|oNonBlock, 0)
	if err != nil {
		if isSymlinkErr(err) {
			return nil, usagef("import: --remove-source: %s is a symbolic link: name the file itself (nothing was read)", name)
		}
		return nil, withHint(fmt.Errorf("import: --remove-source needs to read and overwrite the file: %w", err), "check the path and that you may write it")
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("import: %w", err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, usagef("import: --remove-source: %s is not a regular file", name)
	}
	if !os.SameFile(before, info) {
		f.Close()
		return nil, fmt.Errorf("import: %s: %w while it was opened: nothing was read", name, errSourceSwapped)
	}
	return &sourceFile{f: f, name: name, info: info}, nil
}

// close closes the descriptor. It is idempotent.
func (s *sourceFile) close() {
	if s != nil && s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// shred overwrites the file read with zeros through its descriptor (its
// whole current length), flushes it, and then deletes the path and flushes
// its folder if, and only if, the path still names that file. When the path
// names another file by then (renamed or linked in place, a symlink), that
// file is left alone and the error matches errSourceSwapped: the file that
// was read is zeroed all the same.
//
// The check and the unlink are two system calls: someone who can write the
// folder and swaps the path between them makes shred delete (never
// overwrite) the swapped-in file.
func (s *sourceFile) shred() error {
	now, err := s.f.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(now, s.info) || !now.Mode().IsRegular() {
		return fmt.Errorf("%s: the descriptor no longer names the file read", s.name)
	}
	zero := make([]byte, 32<<10)
	for off := int64(0); off < now.Size(); {
		n := min(int64(len(zero)), now.Size()-off)
		if _, err := s.f.WriteAt(zero[:n], off); err != nil {
			return err
		}
		off += n
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	at, err := os.Lstat(s.name)
	if err != nil {
		return fmt.Errorf("zeroed the file read, but %s: %w", s.name, err)
	}
	if !os.SameFile(at, now) {
		return fmt.Errorf("zeroed the file read, but left %s alone: %w since it was read", s.name, errSourceSwapped)
	}
	if err := os.Remove(s.name); err != nil {
		return err
	}
	s.close()
	return syncDir(filepath.Dir(s.name))
}
