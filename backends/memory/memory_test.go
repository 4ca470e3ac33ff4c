package memory_test

import (
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
	"github.com/sessionvault/sessionvault/backends/memory"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b := memory.New()
		t.Cleanup(func() { b.Close() })
		return b
	}, backendtest.Config{})
}

func TestConformanceSmallLimit(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return memory.New(memory.WithMaxBlobSize(2048))
	}, backendtest.Config{MaxBlobSize: 2048, Writers: 3, Increments: 5})
}
