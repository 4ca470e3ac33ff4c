package file

// OpenLockFiles returns how many lock files of Lock b holds open.
func OpenLockFiles(b *Backend) int { return b.lockFiles.open() }

// MaxIdleLocks is maxIdleLocks, for tests.
const MaxIdleLocks = maxIdleLocks
