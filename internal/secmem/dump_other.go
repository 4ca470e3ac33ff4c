//go:build unix && !linux && !freebsd

package secmem

import "errors"

// dontDump reports that this platform has no madvise flag to keep pages out
// of core dumps. The pages are still locked and wiped.
func dontDump(m []byte) error {
	return errors.New("secmem: excluding memory from core dumps is not supported on this platform")
}
