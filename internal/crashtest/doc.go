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
// arbitrary instruction, but the kernel's page cache survives, so this
// harness proves atomicity against process crashes. Power loss additionally
// depends on the fsync calls, which the fault harness (package faulttest)
// checks step by step.
package crashtest
