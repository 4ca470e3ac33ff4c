package backends

import (
	"fmt"
	"strconv"
)

// NameError reports a name that ValidateName refused. It matches
// ErrInvalidName.
//
// A zero NameError is not a meaningful error: ValidateName and the backends
// make them.
type NameError struct {
	Name   string // the refused name, as given
	Reason string // what is wrong with it, e.g. "contains '/'"
}

// Error quotes the name with %q, so control characters, NUL bytes and
// invalid UTF-8 in a hostile name never reach a terminal or a log raw.
func (e *NameError) Error() string {
	return "backends: invalid name " + quoteName(e.Name) + ": " + e.Reason
}

// Is reports whether target is ErrInvalidName.
func (e *NameError) Is(target error) bool { return target == ErrInvalidName }

// quoteName quotes a possibly hostile name for an error message, cutting
// it short so a megabyte-long name does not become a megabyte-long error.
func quoteName(name string) string {
	const max = MaxNameLen + 16
	if len(name) > max {
		return strconv.Quote(name[:max]) + "..."
	}
	return strconv.Quote(name)
}

// ValidateName reports whether name may name a blob, and why not with a
// *NameError (matching ErrInvalidName).
//
// A valid name is HeaderName, or 1 to MaxNameLen bytes drawn from the
// allowlist A-Z a-z 0-9 '-' '_' '.' '@' '+' that does not start with '.'
// (reserved: HeaderName, temporary and previous-generation files) or '-'
// (so that a name can never be taken for a command-line flag). The
// allowlist rules out, among others, "", "." and "..", path separators,
// NUL and every control character, spaces, ':' (a Windows drive or
// alternate data stream), '%' and non-ASCII look-alikes. Every backend
// calls ValidateName on every name it is given, before any I/O.
func ValidateName(name string) error {
	if name == HeaderName {
		return nil
	}
	switch name {
	case "":
		return &NameError{Name: name, Reason: "empty"}
	case ".", "..":
		return &NameError{Name: name, Reason: "'.' and '..' name folders"}
	}
	if len(name) > MaxNameLen {
		return &NameError{Name: name, Reason: fmt.Sprintf("longer than %d bytes", MaxNameLen)}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !nameByte(c) {
			return &NameError{Name: name, Reason: "contains " + describeByte(c) + " (allowed: A-Z a-z 0-9 - _ . @ +)"}
		}
	}
	switch name[0] {
	case '.':
		return &NameError{Name: name, Reason: "starts with '.' (reserved)"}
	case '-':
		return &NameError{Name: name, Reason: "starts with '-'"}
	}
	return nil
}

// nameByte reports whether c is in the name allowlist.
func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '@', '+':
		return true
	}
	return false
}

// describeByte names a refused byte readably and safely.
func describeByte(c byte) string {
	switch c {
	case '/':
		return "a path separator '/'"
	case '\\':
		return `a path separator '\'`
	case 0:
		return "a NUL byte"
	case ' ':
		return "a space"
	}
	if c < 0x20 || c == 0x7f {
		return fmt.Sprintf("a control character %#02x", c)
	}
	if c >= 0x80 {
		return fmt.Sprintf("a non-ASCII byte %#02x", c)
	}
	return strconv.QuoteRune(rune(c))
}
