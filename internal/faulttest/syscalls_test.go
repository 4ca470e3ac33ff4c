package faulttest

import (
	"context"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/vault"
)

// markPath is opened (and fails) right before the traced saves, so that
// the trace of a child can be cut to the saves themselves; markUpdatePath
// right before the second save, an update of a session that exists.
const (
	markPath       = "/sessionvault-trace-mark-begin"
	markUpdatePath = "/sessionvault-trace-mark-update"
)

// saveChild creates a vault in args[0], marks the trace, saves a new
// session (its record is created through the rename recipe), marks the
// trace again and saves the session once more (an update in place): the
// two saves the parent checks.
func saveChild(args []string) error {
	ctx := context.Background()
	b, err := file.New(args[0])
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, opts("pw")...)
	if err != nil {
		return err
	}
	defer v.Close()
	st := v.Store(sessionName)
	os.Open(markPath)
	ver, err := st.Seal(ctx, []byte(`{"tokens":{"access_token":"a","refresh_token":"r","expires_at":null}}`), backends.Absent)
	if err != nil {
		return err
	}
	os.Open(markUpdatePath)
	_, err = st.Seal(ctx, []byte(`{"tokens":{"access_token":"b","refresh_token":"r","expires_at":null}}`), ver)
	return err
}

// naiveSaveChild is the deliberately broken writer of the checker's
// self-test: a temp file written and renamed over the target with no
// fsync of the file nor of the folder, the common "atomic write" that
// survives a kill -9 but not a power cut; then an update in place with no
// fdatasync.
func naiveSaveChild(args []string) error {
	dir := filepath.Join(args[0], "sessions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	os.Open(markPath)
	tmp := filepath.Join(dir, "."+sessionName+".sealed.tmp-1")
	if err := os.WriteFile(tmp, []byte("sealed bytes"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, sessionName+".sealed")); err != nil {
		return err
	}
	os.Open(markUpdatePath)
	f, err := os.OpenFile(filepath.Join(dir, sessionName+".sealed"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt([]byte("other bytes!"), 0) // an update in place with no fdatasync
	return err
}
