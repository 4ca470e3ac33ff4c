package powerloss

import "time"

// Limits and defaults, each with its reason.
const (
	// SectorSize is the unit of a torn write: disks promise that a
	// 512-byte sector is written whole or not at all (the logical
	// block size every disk still reports), and nothing larger.
	SectorSize = 512

	// unmountWait bounds how long Cut waits for the kernel to let go of
	// the old mount after a lazy unmount (the mount is busy only when a
	// process the caller did not kill still holds a file open on it).
	unmountWait = 10 * time.Second

	// maxReported bounds CutReport.Reverted: enough to see which files
	// a cut touched, bounded for a tree of thousands.
	maxReported = 16

	// childWait bounds how long the runner waits for a child to reach a
	// cut (its fsync count, its time, or its end) and then to die after
	// SIGKILL: a child stuck longer is a harness failure, not a slow
	// machine (one round takes tens of milliseconds).
	childWait = 2 * time.Minute
)
