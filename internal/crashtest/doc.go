// Package crashtest holds the crash harnesses of sessionvault: real child
// processes saving sessions, rotating keys and changing passphrases on a
// file-backed vault are killed with SIGKILL at random moments, and after
// every kill the parent checks that the vault opens, that every session
// opens, and that no acknowledged save was lost.
//
// The package has no API; its tests are the harness:
//
//	go test ./internal/crashtest                          # bounded (CI)
//	SESSIONVAULT_LONG=1 go test ./internal/crashtest      # 500 kills
//	go test ./internal/crashtest -crash.kills=2000 -crash.seed=7
//
// Every run logs its seed; -crash.seed replays the same kill schedule (the
// moments are the same, the machine's timing is not, so a replay is likely
// but not certain to hit the same step).
//
// What a kill -9 proves and what it does not: the process dies at an
// arbitrary instruction, but the kernel's page cache survives, so the kill
// harnesses prove atomicity against process crashes. Power loss
// additionally depends on the fsync calls: the TestPowerCut* harnesses run
// the same workloads (saves, the write-behind metadata flush, rotate-key,
// passwd, passphrase<->keychain slot moves, header recovery, logouts) on a
// powerloss file system, which forgets on every cut what was not fsynced
// and tears un-synced sectors (package powerloss, docs/POWERLOSS.md):
//
//	go test ./internal/crashtest -run PowerCut                       # bounded (CI)
//	SESSIONVAULT_LONG=1 go test ./internal/crashtest -run PowerCut   # 500 cuts each
//
// They need root and /dev/fuse (skipped without, failed under CI), and
// the slot moves a Secret Service (scripts/with-keyring). Checks other
// harnesses bring run after every cut through PostCutChecks.
package crashtest
