//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package file

import (
	"errors"
	"runtime"
)

// On platforms without the system calls the backend relies on (openat,
// linkat, flock with O_NOFOLLOW semantics as above), New fails with
// backends.ErrUnavailable rather than run with weaker guarantees.

const keepRecords = false

var errPlatform = errors.New("not supported on " + runtime.GOOS)

type sysDir struct{ path string }

type sysFile struct{ path string }

type sysLock struct{}

type entry struct {
	name    string
	regular bool
}

func openRoot(path string, create bool) (*sysDir, error) { return nil, errPlatform }

func (d *sysDir) join(name string) string                        { return d.path + "/" + name }
func (d *sysDir) subdir(string, bool) (*sysDir, error)           { return nil, errPlatform }
func (d *sysDir) close() error                                   { return nil }
func (d *sysDir) sync() error                                    { return errPlatform }
func (d *sysDir) readFile(string, int) ([]byte, error)           { return nil, errPlatform }
func (d *sysDir) createTemp(string) (*sysFile, error)            { return nil, errPlatform }
func (d *sysDir) rename(string, string) error                    { return errPlatform }
func (d *sysDir) remove(string) error                            { return errPlatform }
func (d *sysDir) entries() ([]entry, error)                      { return nil, errPlatform }
func (d *sysDir) openLock(string) (*sysLock, error)              { return nil, errPlatform }
func (d *sysDir) sameLock(*sysLock, string) bool                 { return false }
func (d *sysDir) sameFile(*sysFile, string) (int64, bool)        { return 0, false }
func (f *sysFile) write([]byte) error                            { return errPlatform }
func (f *sysFile) sync() error                                   { return errPlatform }
func (f *sysFile) close() error                                  { return nil }
func (l *sysLock) tryLock() (bool, error)                        { return false, errPlatform }
func (l *sysLock) unlock() error                                 { return errPlatform }
func (l *sysLock) close() error                                  { return nil }
func (d *sysDir) openFile(string, bool) (*sysFile, int64, error) { return nil, 0, errPlatform }
func (f *sysFile) pread([]byte, int64) error                     { return errPlatform }
func (f *sysFile) pwritev([][]byte, int64) error                 { return errPlatform }
func (f *sysFile) datasync() error                               { return errPlatform }
func (d *sysDir) openScrub(string) (*sysFile, int64)             { return nil, 0 }
func (f *sysFile) unlinked() bool                                { return false }

// otherLinks: hard links are not checked here.
func (f *sysFile) otherLinks() bool { return false }
