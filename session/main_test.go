//go:build unix

package session_test

import (
	"testing"

	"github.com/sessionvault/sessionvault/internal/reexec"
)

// TestMain dispatches the child roles of the multi-process tests (see
// process_test.go): the test binary runs again as a second process.
func TestMain(m *testing.M) {
	reexec.Main(m, map[string]reexec.Func{
		"cookie-writer":  roleCookieWriter,
		"bot":            roleBot,
		"http-sink":      roleHTTPSink,
		"slow-refresher": roleSlowRefresher,
	})
}
