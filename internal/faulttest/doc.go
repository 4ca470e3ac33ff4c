// Package faulttest injects filesystem faults into every step of the file
// backend's writes, through its fault seam (file.WithStepHook), while a
// session is saved and while the vault header is rewritten, and checks what
// must survive each one: the call returns a typed error that names the
// step, the previous content still opens, and no temp file is left behind.
// It also checks the durable-write order in the system calls a real save
// makes (traced with strace(1): the temp file fsynced before the rename,
// the folder after it), and that the harness itself notices a backend
// with untyped errors, an in-place write or a temp file left behind.
//
// The package has no API; its tests are the harness:
//
//	go test ./internal/faulttest
package faulttest
