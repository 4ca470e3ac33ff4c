//go:build !unix

package vault

import "testing"

func budgetChild(t *testing.T, dir string) childRun {
	t.Skip("peak RSS of a child is measured on Linux only")
	return childRun{}
}

func peakRSSKiB() int64 { return -1 }
