//go:build unix

package permissions

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// carelessOpen is a deliberately broken reader for the harness's
// self-test: it copies the vault's folder with os.ReadFile and os.Stat
// (following symlinks, ignoring modes and owners) into a fresh private
// folder and opens the vault from the copy, so that nothing about the
// original is checked.
func carelessOpen(dir string) error {
	ctx := context.Background()
	parent, err := os.MkdirTemp("", "careless-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(parent)
	dst := filepath.Join(parent, "vault")
	if err := carelessCopy(dir, dst); err != nil {
		return err
	}
	b, err := file.New(dst)
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(passphrase)), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		return err
	}
	defer v.Close()
	_, _, err = v.Store(sessionName).Open(ctx)
	return err
}

// carelessCopy copies src to dst, following every symlink, into folders
// 0700 and files 0600.
func carelessCopy(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := carelessCopy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// untypedOpen is the library with its errors flattened to strings.
func untypedOpen(dir string) error {
	if err := libraryOpen(dir); err != nil {
		return errors.New(err.Error())
	}
	return nil
}

// libraryVault makes a vault of one session through the library, with
// the cheapest KDF (the self-test does not need vaultctl's).
func libraryVault(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte(passphrase)),
		vault.WithKDFParams(kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Store(sessionName).Seal(ctx, []byte(`{"tokens":{"access_token":"a","refresh_token":"r","expires_at":null}}`), backends.Absent); err != nil {
		t.Fatal(err)
	}
	// Lock files exist once a write has taken the lock.
	if _, err := os.Stat(filepath.Join(dir, "locks")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPermissionsHarnessCatchesCarelessReaders runs every unsafe case of
// the harness on a reader that checks nothing (each case must be reported
// as opened) and on one with untyped errors (each reported as untyped),
// and the mode check on files a naive writer made under umask 000.
func TestPermissionsHarnessCatchesCarelessReaders(t *testing.T) {
	template := libraryVault(t)
	if _, _, err := checkRefusal(carelessOpen, template, ""); err == nil || err.Error() != "the unsafe vault opened" {
		t.Fatalf("the careless reader does not open the intact vault: %v", err)
	}
	tried := 0
	for _, uc := range unsafeCases() {
		if uc.root && os.Geteuid() != 0 {
			continue
		}
		dir := filepath.Join(t.TempDir(), "vault")
		if out, err := exec.Command("cp", "-a", template, dir).CombinedOutput(); err != nil {
			t.Fatalf("cp -a: %v\n%s", err, out)
		}
		fix := uc.breakIt(t, filepath.Clean(dir))
		tried++
		if typed, _, err := checkRefusal(carelessOpen, dir, fix); typed || err == nil {
			t.Errorf("%s: the harness did not report that a careless reader opened it: %v", uc.name, err)
		}
		if typed, _, err := checkRefusal(untypedOpen, dir, fix); typed || err == nil {
			t.Errorf("%s: the harness did not report an untyped refusal: %v", uc.name, err)
		}
	}
	if tried == 0 {
		t.Fatal("no case tried")
	}

	old := syscall.Umask(0)
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "vault.hdr"), []byte("x"), 0o666)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	if bad := badModes(t, dir); len(bad) != 1 {
		t.Errorf("a file written 0666 under umask 000: badModes = %q, want it", bad)
	}
}
