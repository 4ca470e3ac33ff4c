// Package backendtest is the conformance suite for backends.Backend
// implementations, in the manner of testing/fstest and x/net/nettest.
//
// A backend's own test calls Run with a constructor for fresh, empty
// instances and a Config that states its honest limits:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backends.Backend {
//			b, err := file.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		}, backendtest.Config{})
//	}
//
// The suite checks: round trips of binary data (every byte value, NUL
// included), empty and maximum-size blobs, a blob one byte over the
// maximum refused with ErrTooLarge, compare-and-set semantics of Put and
// Delete (Absent, Any, current and stale versions, nothing changed on a
// conflict), versions that change with the content, concurrent writers
// that never lose an update, List sorted, without HeaderName and without
// deleted names, pre-cancelled and expired contexts, every name of
// BadNames refused by every method, Get and Put copying their slices, and
// the optional interfaces backends.Locker and backends.Recoverer when the
// backend implements them.
package backendtest

import (
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Config states what a backend can honestly do. The zero Config asks for
// everything: backends.MaxBlobSize, backends.MaxNameLen, List, and the
// default concurrency.
type Config struct {
	// MaxBlobSize is the largest blob the backend stores; a blob one
	// byte larger must fail with an error matching backends.ErrTooLarge.
	// Zero means backends.MaxBlobSize. It may not exceed it.
	MaxBlobSize int

	// MaxNameLen is the longest name the backend accepts; a name one
	// byte longer must fail with backends.ErrInvalidName. Zero means
	// backends.MaxNameLen. It may not exceed it.
	MaxNameLen int

	// NoList is set by backends that cannot enumerate their blobs (some
	// keychains): their List must fail with an error matching
	// backends.ErrUnavailable, and the suite checks only that.
	NoList bool

	// Writers is the number of goroutines in the concurrent-writer
	// tests, and Increments the number of successful compare-and-set
	// increments each of them makes. Zero means 8 and 20. A slow
	// backend (a keychain behind D-Bus) may lower them, not to zero.
	Writers, Increments int

	// Timeout bounds each subtest, so that a backend that hangs (a
	// keychain prompt nobody answers) fails instead of stalling the test
	// binary. Zero means two minutes.
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBlobSize <= 0 || c.MaxBlobSize > backends.MaxBlobSize {
		c.MaxBlobSize = backends.MaxBlobSize
	}
	if c.MaxNameLen <= 0 || c.MaxNameLen > backends.MaxNameLen {
		c.MaxNameLen = backends.MaxNameLen
	}
	if c.Writers <= 0 {
		c.Writers = 8
	}
	if c.Increments <= 0 {
		c.Increments = 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	return c
}
