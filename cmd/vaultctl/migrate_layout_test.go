//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrateLayoutGolden: vaultctl migrate-layout moves the golden
// layout-1 vault (testdata/layout-v1/vault, a copy of the one in
// backends/file/testdata/golden) to layout 2; the vault opens before and
// after, with both generations of each file kept (verify --recover finds
// nothing to do), and a second run has nothing to move.
func TestMigrateLayoutGolden(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "vault")
	src := filepath.Join("testdata", "layout-v1", "vault")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.Mkdir(filepath.Join(dir, r), 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, r), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(base, "pass")
	os.WriteFile(pass, []byte("golden passphrase, file layout v1\n"), 0o600)
	if code, out, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify"); code != 0 || !strings.Contains(out, "1 of 1 sessions open") {
		t.Fatalf("verify of the layout-1 vault: %d %q %q", code, out, stderr)
	}
	code, out, stderr := runCLI(t, nil, "--dir", dir, "migrate-layout")
	if code != 0 || !strings.Contains(out, "moved to layout 2: header, trader-1") {
		t.Fatalf("migrate-layout: %d %q %q", code, out, stderr)
	}
	for _, p := range []string{"vault.hdr", "sessions/trader-1.sealed"} {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || len(data)%8192 != 0 || string(data[:8]) != "SVLT-REC" {
			t.Errorf("%s is not a layout-2 record after migrate-layout (%v)", p, err)
		}
	}
	for _, p := range []string{".vault.hdr.prev", "sessions/.trader-1.sealed.prev"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s left after migrate-layout", p)
		}
	}
	if code, out, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "export", "trader-1"); code != 0 || !strings.Contains(out, "golden-access-2") {
		t.Fatalf("export after migrate-layout: %d %q %q", code, out, stderr)
	}
	if code, out, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "verify", "--recover"); code != 0 || !strings.Contains(out, "vault OK") {
		t.Fatalf("verify --recover after migrate-layout: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, nil, "--dir", dir, "migrate-layout"); code != 0 || !strings.Contains(out, "nothing to migrate: 2 files already in layout 2") {
		t.Fatalf("second migrate-layout: %d %q", code, out)
	}
}
