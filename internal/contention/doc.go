// Package contention runs real processes against one vault at the same
// time: N writers each add K uniquely named cookies to one shared session
// while a reader loads it in a loop. Afterwards every one of the N x K
// cookies must be present (no lost update), and the reader must never have
// seen a torn or undecryptable file.
//
// The package has no API; its tests are the harness:
//
//	go test ./internal/contention                                   # N=4, K=25
//	SESSIONVAULT_LONG=1 go test ./internal/contention               # N=8, K=200
//	go test ./internal/contention -contention.n=16 -contention.k=50
package contention
