package file

import (
	"context"
	"errors"
	"io/fs"
	"strconv"

	"github.com/sessionvault/sessionvault/backends"
)

// Step names one step of a write (or read) of the file backend. A failed
// call reports its step in backends.OpError.Step, and WithStepHook sees
// each step before it runs.
type Step string

// The steps of the backend's operations. An update in place (a Put or
// Restore of a name whose record has room for the blob) runs StepLock,
// StepRead, StepWrite and StepFsync; a write that creates or replaces the
// file (the first Put of a name, a blob that outgrew its slots, the
// first write of a layout-1 file) runs RewriteSteps.
const (
	StepCreateTemp Step = "create temp" // create the temp file (O_EXCL|O_NOFOLLOW, 0600)
	StepWrite      Step = "write"       // write the blob: into a slot of the record, or to the temp file
	StepFsync      Step = "fsync"       // fdatasync the record after an update in place; fsync the temp file
	StepClose      Step = "close"       // close the temp file
	StepLock       Step = "lock"        // take the name's write lock
	StepRead       Step = "read"        // open (O_NOFOLLOW), check and read a stored file
	StepRename     Step = "rename"      // rename the temp file over the target
	StepRemove     Step = "remove"      // remove a file (Delete; a layout-1 previous generation)
	StepFsyncDir   Step = "fsync dir"   // fsync the folder that holds the target

	// Deprecated: layout 1 only; the layout-2 code never runs them.
	StepLinkPrev   Step = "link previous"
	StepRenamePrev Step = "rename previous"
)

// PutSteps returns the steps of a Put that replaces a stored blob in
// place (the common case: a session updated again), in the order they
// run. Harnesses that fail or hold each step should range over it rather
// than keep their own copy of the list.
func PutSteps() []Step {
	return []Step{StepLock, StepRead, StepWrite, StepFsync}
}

// RewriteSteps returns the steps of a Put that writes the name's file
// anew (see the package documentation), in the order they run; a Put
// that moves a layout-1 file to layout 2 also runs StepRemove (of the
// layout-1 previous generation) before StepFsyncDir.
func RewriteSteps() []Step {
	return []Step{StepLock, StepRead, StepCreateTemp, StepWrite, StepFsync, StepClose, StepRename, StepFsyncDir}
}

// UnsafeError reports a path that the backend refuses to use because it
// could let someone else read, change or redirect the vault: a symbolic
// link, a file or folder that group or others can access, one owned by
// another user, or the wrong kind of file. It matches
// backends.ErrPermission, and its message says what to fix.
//
// A zero UnsafeError is not a meaningful error: the backend makes them.
type UnsafeError struct {
	Path    string // the offending path
	Problem string // what is wrong, e.g. "is a symbolic link"
	Fix     string // what to do about it, e.g. "chmod 600 /x/vault.hdr"
}

// Error returns "PATH PROBLEM: FIX".
func (e *UnsafeError) Error() string {
	return e.Path + " " + e.Problem + ": " + e.Fix
}

// Is reports whether target is backends.ErrPermission.
func (e *UnsafeError) Is(target error) bool { return target == backends.ErrPermission }

// errClosed is the cause of calls made after Close.
var errClosed = errors.New("backend closed")

// kindOf maps a cause to its backends category.
func kindOf(err error) error {
	var u *UnsafeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	case errors.As(err, &u):
		return nil // matches ErrPermission itself
	case errors.Is(err, fs.ErrNotExist):
		return backends.ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return backends.ErrPermission
	}
	return backends.ErrUnavailable
}

// tooLargeError reports a stored file over the size limit: refused before
// anything is allocated for it.
type tooLargeError struct {
	path  string
	size  int64
	limit int
}

func (e *tooLargeError) Error() string {
	return e.path + " holds " + itoa(e.size) + " bytes, over the limit of " + itoa(int64(e.limit))
}

func (e *tooLargeError) Is(target error) bool { return target == backends.ErrTooLarge }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// conflictError is the cause of a version mismatch.
type conflictError struct{ reason string }

func (e *conflictError) Error() string { return e.reason }

// readKind is the category of an error from reading a stored file.
func readKind(err error) error {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return nil // matches ErrTooLarge itself
	}
	return kindOf(err)
}

// writeKind is the category of an error from a step of a write: a
// missing file or folder there means the vault folder changed under us.
func writeKind(err error) error {
	k := readKind(err)
	if k == backends.ErrNotFound {
		return backends.ErrUnavailable
	}
	return k
}
