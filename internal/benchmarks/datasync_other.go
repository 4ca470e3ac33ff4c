//go:build !linux

package benchmarks

import "os"

// dataSync is os.File.Sync: fsync(2), F_FULLFSYNC on macOS,
// FlushFileBuffers on Windows.
func dataSync(f *os.File) error { return f.Sync() }
