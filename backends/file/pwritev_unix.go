//go:build linux || darwin || openbsd

package file

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// pwritev writes parts, one after the other, at offset off with
// pwritev(2): the blob is written from the caller's buffer, not copied
// next to its slot header first.
func (f *sysFile) pwritev(parts [][]byte, off int64) error {
	for len(parts) > 0 {
		var n int
		err := retry(func() (err error) { n, err = unix.Pwritev(f.fd, parts, off); return })
		if err != nil {
			return &fs.PathError{Op: "write", Path: f.path, Err: err}
		}
		if n == 0 {
			return &fs.PathError{Op: "write", Path: f.path, Err: unix.EIO}
		}
		off += int64(n)
		parts = advance(parts, n)
	}
	return nil
}
