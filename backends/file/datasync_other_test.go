//go:build !linux

package file_test

import "os"

// fdatasync is the baseline's sync where there is no fdatasync(2) (on
// macOS os.File.Sync is F_FULLFSYNC, as the backend's own).
func fdatasync(f *os.File) error { return f.Sync() }
