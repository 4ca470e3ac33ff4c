package backends_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
)

func TestValidateNameRejects(t *testing.T) {
	for _, name := range backendtest.BadNames() {
		err := backends.ValidateName(name)
		if !errors.Is(err, backends.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", name, err)
			continue
		}
		var ne *backends.NameError
		if !errors.As(err, &ne) || ne.Name != name || ne.Reason == "" {
			t.Errorf("ValidateName(%q): %#v is not a *NameError with the name and a reason", name, err)
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\x00\n\r\t\x1b\x7f") || !utf8.ValidString(msg) || strings.ContainsRune(msg, '\u202e') {
			t.Errorf("ValidateName(%q): message %q carries raw bytes of the name", name, msg)
		}
		if len(msg) > 2*backends.MaxNameLen+150 {
			t.Errorf("ValidateName of a %d-byte name: message is %d bytes", len(name), len(msg))
		}
	}
}

func TestValidateNameAccepts(t *testing.T) {
	for _, name := range append(backendtest.GoodNames(0), backends.HeaderName) {
		if err := backends.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
}

func TestValidateNameReasons(t *testing.T) {
	for name, reason := range map[string]string{
		"":      "empty",
		"a/b":   "path separator '/'",
		`a\b`:   `path separator '\'`,
		"a\x00": "NUL",
		"a\n":   "control character 0x0a",
		"é":     "non-ASCII byte 0xc3",
		".x":    "starts with '.'",
		".":     "'.' and '..' name folders",
		"..":    "'.' and '..' name folders",
		"-x":    "starts with '-'",
		"a b":   "space",
		"a:b":   "':'",
		strings.Repeat("x", backends.MaxNameLen+1): "longer than 128 bytes",
	} {
		err := backends.ValidateName(name)
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("ValidateName(%q) = %v, want the reason %q", name, err, reason)
		}
	}
}

// FuzzValidateName checks that every accepted name is safe as a single
// path element and as a command-line argument on every platform.
func FuzzValidateName(f *testing.F) {
	for _, n := range backendtest.BadNames() {
		f.Add(n)
	}
	for _, n := range backendtest.GoodNames(0) {
		f.Add(n)
	}
	f.Add(backends.HeaderName)
	f.Fuzz(func(t *testing.T, name string) {
		err := backends.ValidateName(name)
		if err != nil {
			if !errors.Is(err, backends.ErrInvalidName) {
				t.Fatalf("error %v does not match ErrInvalidName", err)
			}
			if strings.ContainsAny(err.Error(), "\x00\n\r\x1b") {
				t.Fatalf("error message carries raw control bytes: %q", err.Error())
			}
			return
		}
		if name == backends.HeaderName {
			return
		}
		if name == "" || name == "." || name == ".." || len(name) > backends.MaxNameLen {
			t.Fatalf("accepted %q", name)
		}
		if name[0] == '.' || name[0] == '-' {
			t.Fatalf("accepted %q, which starts with %q", name, name[0])
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c < 0x21 || c > 0x7e || strings.IndexByte(`/\:*?"<>|%$~' `+"`", c) >= 0 {
				t.Fatalf("accepted %q, which holds %q", name, c)
			}
		}
	})
}

func TestOpError(t *testing.T) {
	cause := errors.New("input/output error")
	err := &backends.OpError{Backend: "file", Op: "put", Name: "bot\n1", Step: "fsync", Kind: backends.ErrUnavailable, Err: cause}
	if got, want := err.Error(), `backends/file: put "bot\n1": fsync: input/output error`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, cause) || errors.Is(err, backends.ErrNotFound) {
		t.Error("OpError does not match exactly its kind and its cause")
	}
	err = &backends.OpError{Backend: "memory", Op: "get", Name: "x", Kind: backends.ErrNotFound}
	if got, want := err.Error(), `backends/memory: get "x": not found`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err = &backends.OpError{Op: "list", Err: cause}
	if got, want := err.Error(), `backends: list: input/output error`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if len(err.Unwrap()) != 1 {
		t.Errorf("Unwrap of an OpError without Kind = %v", err.Unwrap())
	}
	var ne *backends.NameError
	wrapped := &backends.OpError{Op: "get", Name: "a/b", Kind: backends.ErrInvalidName, Err: backends.ValidateName("a/b")}
	if !errors.As(wrapped, &ne) || ne.Name != "a/b" {
		t.Error("errors.As does not reach the *NameError inside an OpError")
	}
}

func ExampleValidateName() {
	for _, name := range []string{"bot-1", "../etc/passwd", "a\x00b", ".vault"} {
		fmt.Println(backends.ValidateName(name))
	}
	// Output:
	// <nil>
	// backends: invalid name "../etc/passwd": contains a path separator '/' (allowed: A-Z a-z 0-9 - _ . @ +)
	// backends: invalid name "a\x00b": contains a NUL byte (allowed: A-Z a-z 0-9 - _ . @ +)
	// <nil>
}
