//go:build !unix

package main

// Without O_NOFOLLOW, openSource relies on its lstat before the open and
// the identity check after it.
const (
	oNoFollow = 0
	oNonBlock = 0
)

func isSymlinkErr(error) bool { return false }
