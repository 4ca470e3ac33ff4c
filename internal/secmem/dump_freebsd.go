package secmem

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// dontDump excludes m from core dumps (MADV_NOCORE).
func dontDump(m []byte) error {
	if err := unix.Madvise(m, unix.MADV_NOCORE); err != nil {
		return fmt.Errorf("secmem: madvise(MADV_NOCORE): %w", err)
	}
	return nil
}
