package backendtest

import (
	"strings"

	"github.com/sessionvault/sessionvault/backends"
)

// BadNames returns names that every backend must refuse with an error
// matching backends.ErrInvalidName, from every method that takes a name.
// Each call returns a fresh slice.
func BadNames() []string {
	return []string{
		"",
		".",
		"..",
		"...",
		"../x",
		"x/..",
		"a/b",
		"/abs",
		"/",
		"a\\b",
		"\\",
		"..\\x",
		"a\x00b",
		"\x00",
		"x\x00",
		"a\nb",
		"\n",
		"a\rb",
		"\t",
		"a\x1bb", // ESC: terminal escape sequences
		"a\x7f",
		".hidden",
		".vault.prev",
		".x.sealed.tmp-0123456789abcdef",
		"..vault",
		".VAULT",
		"-rf",
		"--help",
		"a b",
		" ",
		"a:b",
		"C:",
		"a*",
		"a?",
		"a%2fb",
		"~",
		"$HOME",
		"a\"b",
		"é",
		"\xff",
		"\u202egnp.exe", // right-to-left override
		"a\u200bb",      // zero-width space
		strings.Repeat("a", backends.MaxNameLen+1),
		strings.Repeat("a", 4096),
	}
}

// GoodNames returns names that every backend must accept (given a
// Config.MaxNameLen of at least backends.MaxNameLen; longer names are
// left out otherwise). HeaderName is not among them: it is tested on its
// own.
func GoodNames(maxNameLen int) []string {
	if maxNameLen <= 0 || maxNameLen > backends.MaxNameLen {
		maxNameLen = backends.MaxNameLen
	}
	names := []string{
		"a",
		"Z",
		"0",
		"default",
		"bot-1",
		"bot_2",
		"user@example.com",
		"a+b",
		"a.b",
		"a..b",
		"x.sealed",
		"vault",
		"vault.hdr",
		"sessions",
		"lock",
		"a-",
		"a.",
		strings.Repeat("n", maxNameLen),
	}
	return names
}
