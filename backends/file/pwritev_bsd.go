//go:build freebsd || netbsd || dragonfly

package file

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// pwritev writes parts, one after the other, at offset off. These systems
// have pwritev(2), but golang.org/x/sys/unix does not wrap it for them:
// the parts are written with one pwrite(2) each, which is as atomic for a
// reader (every reader checks the slot's checksums) and as durable (the
// fdatasync comes after).
func (f *sysFile) pwritev(parts [][]byte, off int64) error {
	for _, p := range parts {
		for len(p) > 0 {
			var n int
			err := retry(func() (err error) { n, err = unix.Pwrite(f.fd, p, off); return })
			if err != nil {
				return &fs.PathError{Op: "write", Path: f.path, Err: err}
			}
			if n == 0 {
				return &fs.PathError{Op: "write", Path: f.path, Err: unix.EIO}
			}
			p, off = p[n:], off+int64(n)
		}
	}
	return nil
}
