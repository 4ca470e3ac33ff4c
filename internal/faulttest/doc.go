// Package faulttest injects filesystem faults into every step of the file
// backend's writes, through its fault seam (file.WithStepHook), while a
// session is saved and while the vault header is rewritten, and checks what
// must survive each one: the call returns a typed error that names the
// step, the previous content still opens, and no temp file is left behind.
// It also checks the order of the durable-write steps, and that no
// plaintext ever reaches the vault folder while a write is held at any step.
//
// The package has no API; its tests are the harness:
//
//	go test ./internal/faulttest
package faulttest
