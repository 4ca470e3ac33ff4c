package backends

import "strings"

// OpError is the error every backend in this module returns from a failed
// call. It matches its category (Kind, one of the Err* sentinels, when
// there is one) and its cause (Err) with errors.Is and errors.As.
//
// Its message never contains blob bytes: only the backend, the operation,
// the quoted blob name, the failing step and the cause.
//
// A zero OpError is not a meaningful error: the backends make them.
type OpError struct {
	// Backend names the implementation, e.g. "file" or "memory"; the
	// message is prefixed with "backends/" + Backend.
	Backend string
	// Op is the method that failed: "get", "put", "delete", "list",
	// "lock", "unlock", "previous", "restore", "open" or "close".
	Op string
	// Name is the blob or lock name the call was given, or "".
	Name string
	// Step names the step of a write (or read) that failed, for backends
	// whose writes have several: "create temp", "write", "fsync",
	// "close", "link previous", "rename", "rename previous", "fsync dir", ... Empty when the
	// call failed before any step or has a single one.
	Step string
	// Kind is the error category (ErrNotFound, ErrConflict, ErrTooLarge,
	// ErrUnavailable, ErrLocked, ErrPermission, ErrInvalidName), or nil
	// when the cause speaks for itself (a context error).
	Kind error
	// Err is the underlying cause (a syscall error, a *NameError, a
	// context error, ...), or nil.
	Err error
}

// Error formats the error as
// "backends/BACKEND: OP "NAME": STEP: CAUSE".
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("backends")
	if e.Backend != "" {
		b.WriteString("/")
		b.WriteString(e.Backend)
	}
	b.WriteString(": ")
	b.WriteString(e.Op)
	if e.Name != "" {
		b.WriteString(" ")
		b.WriteString(quoteName(e.Name))
	}
	if e.Step != "" {
		b.WriteString(": ")
		b.WriteString(e.Step)
	}
	switch {
	case e.Err != nil:
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	case e.Kind != nil:
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "backends: "))
	}
	return b.String()
}

// Unwrap returns the category and the cause, so that errors.Is matches
// both.
func (e *OpError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
