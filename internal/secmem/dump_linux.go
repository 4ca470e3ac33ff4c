package secmem

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// dontDump excludes m from core dumps (MADV_DONTDUMP) and from the memory
// of children made by fork (MADV_DONTFORK).
func dontDump(m []byte) error {
	if err := unix.Madvise(m, unix.MADV_DONTDUMP); err != nil {
		return fmt.Errorf("secmem: madvise(MADV_DONTDUMP): %w", err)
	}
	if err := unix.Madvise(m, unix.MADV_DONTFORK); err != nil {
		return fmt.Errorf("secmem: madvise(MADV_DONTFORK): %w", err)
	}
	return nil
}
