package faulttest

import (
	"testing"

	"github.com/sessionvault/sessionvault/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Main(m, map[string]reexec.Func{
		// syscalls_linux_test.go
		"save":      saveChild,
		"naivesave": naiveSaveChild,
	})
}
