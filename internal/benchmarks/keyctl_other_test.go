//go:build !linux

package benchmarks

import "testing"

// unlinkUserKeyring does nothing: the kernel keyring exists only on Linux.
func unlinkUserKeyring(testing.TB, string) {}
