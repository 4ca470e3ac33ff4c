// Package leaktest looks for secrets where they must not be: in output
// (fmt with every verb, log/slog, encoding/json, error strings, recovered
// panics, vaultctl's stdout and stderr), in the vault folder while a write
// is in progress, and in the process's own memory after cleanup.
//
// Every secret it plants is a random marker from package memscan, so the
// harness can recognise a copy (plain, base64 or hex) without holding one.
// Memory is measured in a fresh child process per path (create, load,
// update, clear, import), which scans its own memory after cleanup and a
// garbage collection and reports the number of copies left.
//
// The package has no API; its tests are the harness:
//
//	go test ./internal/leaktest
package leaktest
