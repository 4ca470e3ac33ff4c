package vault

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/sessionvault/sessionvault/backends"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// CredentialsDirectoryEnv is the environment variable systemd sets for a
// service that has credentials (LoadCredential=, LoadCredentialEncrypted=,
// SetCredential=): the folder holding one file per credential, decrypted,
// private to the service.
const CredentialsDirectoryEnv = "CREDENTIALS_DIRECTORY"

// ErrCredential: a systemd credential could not be used as a passphrase
// (no $CREDENTIALS_DIRECTORY, a bad name, a file that others can read or
// that is not a regular file, an empty or oversized file). A missing
// credential file also matches ErrNotFound; a file others may read or a
// symlink also matches backends.ErrPermission.
var ErrCredential error = &sentinel{msg: "vault: unusable credential"}

// CredentialError reports a systemd credential that cannot be used. It
// unwraps to ErrCredential and to the cause.
//
// A zero CredentialError is not a meaningful error: the package makes them.
type CredentialError struct {
	Name   string // the credential name
	Reason string
	Err    error // the cause (an *fs.PathError, ErrNotFound), or nil
}

func (e *CredentialError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("vault: credential %q: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("vault: credential %q: %s: %v", e.Name, e.Reason, e.Err)
}

// Unwrap returns ErrCredential and the cause.
func (e *CredentialError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCredential}
	}
	return []error{ErrCredential, e.Err}
}

// WithPassphraseCredential is WithPassphrase with the passphrase read from
// the systemd credential name: the file $CREDENTIALS_DIRECTORY/name that
// systemd decrypts for the service (LoadCredentialEncrypted=name:PATH in
// its unit, with a credential made by "systemd-creds encrypt"; see
// docs/systemd.md). One trailing newline is removed. It is refused, and
// Create or Open fail with an error matching ErrCredential, when
// $CREDENTIALS_DIRECTORY is unset or relative, when name is not a plain
// file name, and when the file is a symlink, not a regular file, readable
// or writable by others or writable by its group (systemd makes it 0400,
// owned by the service's user), empty, or over MaxPassphraseSize bytes.
// The passphrase goes straight into locked memory; no copy is left.
func WithPassphraseCredential(name string) Option {
	return func(c *config) {
		p, err := readCredential(os.Getenv(CredentialsDirectoryEnv), name)
		c.pass.Destroy()
		c.pass = p
		c.passErr = err
	}
}

// ReadPassphraseCredential reads the systemd credential name as
// WithPassphraseCredential does, for callers that need the passphrase
// itself (a new passphrase for ChangePassphrase). The caller wipes it.
func ReadPassphraseCredential(name string) ([]byte, error) {
	p, err := readCredential(os.Getenv(CredentialsDirectoryEnv), name)
	if err != nil {
		return nil, err
	}
	defer p.Destroy()
	return append(make([]byte, 0, len(p.Bytes())), p.Bytes()...), nil
}

func readCredential(dir, name string) (*secmem.Buffer, error) {
	bad := func(reason string, err error) (*secmem.Buffer, error) {
		return nil, &CredentialError{Name: name, Reason: reason, Err: err}
	}
	if runtime.GOOS == "windows" {
		return bad("systemd credentials exist on Linux only", errors.ErrUnsupported)
	}
	if dir == "" {
		return bad("$"+CredentialsDirectoryEnv+" is unset: run under systemd with LoadCredential= or LoadCredentialEncrypted= for this name", nil)
	}
	if !filepath.IsAbs(dir) {
		return bad("$"+CredentialsDirectoryEnv+" is not an absolute path", nil)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return bad("not a credential name (a file name, no slash)", nil)
	}
	path := filepath.Join(dir, name)
	f, err := openNoFollow(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return bad("no such credential in $"+CredentialsDirectoryEnv, notFound("credential file", err))
		}
		if errors.Is(err, syscall.ELOOP) {
			return bad("it is a symlink, refused", fmt.Errorf("%w: %w", backends.ErrPermission, err))
		}
		return bad("cannot open it", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return bad("stat", err)
	}
	if !fi.Mode().IsRegular() {
		return bad(fmt.Sprintf("%s is not a regular file", path), nil)
	}
	if m := fi.Mode().Perm(); m&0o027 != 0 {
		return bad(fmt.Sprintf("%s has mode %#o: readable or writable by others, or writable by its group (systemd makes credentials 0400)", path, m), backends.ErrPermission)
	}
	if fi.Size() > MaxPassphraseSize+2 {
		return bad(fmt.Sprintf("%d bytes, the most is %d", fi.Size(), MaxPassphraseSize), nil)
	}
	buf := secmem.New(MaxPassphraseSize + 2)
	n, err := io.ReadFull(f, buf.Bytes())
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		buf.Destroy()
		return bad("read", err)
	}
	if n > MaxPassphraseSize+1 {
		buf.Destroy()
		return bad(fmt.Sprintf("longer than %d bytes", MaxPassphraseSize), nil)
	}
	p := buf.Bytes()[:n]
	if len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	if len(p) == 0 || len(p) > MaxPassphraseSize {
		buf.Destroy()
		return bad(fmt.Sprintf("%d bytes: want 1 to %d", len(p), MaxPassphraseSize), nil)
	}
	out := secmem.New(len(p))
	copy(out.Bytes(), p)
	buf.Destroy()
	return out, nil
}
