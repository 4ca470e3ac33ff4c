//go:build !unix

package main

import "io/fs"

// foreignOwner is not checked where files have ACLs instead of one owner.
func foreignOwner(fs.FileInfo) (string, bool) { return "", false }

// fileKey identifies a file on its device.
type fileKey struct{ dev, ino uint64 }

// linkCount is not checked where os.FileInfo carries no link count.
func linkCount(fs.FileInfo) (fileKey, uint64, bool) { return fileKey{}, 0, false }
