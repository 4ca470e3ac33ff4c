package benchmarks

import (
	"os"
	"testing"

	"github.com/sessionvault/sessionvault/internal/reexec"
)

// TestMain dispatches the child roles that measure a fresh process (peak
// RSS); in the parent it runs the tests and benchmarks, then removes the
// vault fixtures they shared.
func TestMain(m *testing.M) {
	if reexec.IsChild() {
		reexec.Main(m, childRoles)
		return
	}
	code := m.Run()
	removeFixtures()
	removeVaultctl()
	os.Exit(code)
}
