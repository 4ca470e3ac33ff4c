package file_test

import (
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
	"github.com/sessionvault/sessionvault/backends/file"
)

// newBackend opens a backend on a fresh folder inside t.TempDir().
func newBackend(t testing.TB, opts ...file.Option) *file.Backend {
	t.Helper()
	b, err := file.New(t.TempDir()+"/vault", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return newBackend(t) }, backendtest.Config{})
}
