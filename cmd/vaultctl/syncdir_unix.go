//go:build !windows

package main

import "os"

// syncDir flushes a folder's entries (a delete or rename in it) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
