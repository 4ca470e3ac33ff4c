//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// Golden vault folders of each file layout, written once by the code of
// that layout and kept forever (docs/FORMAT.md, section 15): every later
// release must open them. testdata/golden/layout-v1/blobs holds blobs the
// backend stores as opaque bytes (two generations of the header and of one
// session, one generation of another); layout-v1/vault is a real vault
// (passphrase goldenPassphrase, argon2id at kdf.Floor) with one session
// written twice. Git keeps neither the modes nor the empty locks/ folder:
// copyGolden restores both in a temp folder before a test opens it.
//
// They were written by the layout-1 code (this file on a tree of commit
// 0c21a14) with
//
//	go test ./backends/file -run TestGenerateGoldenFolders -golden.generate
//
// which refuses to overwrite a folder that exists.
var generateGolden = flag.Bool("golden.generate", false, "write missing golden vault folders under testdata/golden (never overwrites)")

const goldenPassphrase = "golden passphrase, file layout v1"

// goldenBlobs is what layout-v1/blobs holds: name -> generations, oldest
// first.
var goldenBlobs = map[string][]string{
	backends.HeaderName: {"golden header, generation 1", "golden header, generation 2"},
	"alice":             {"alice, generation 1", "alice, generation 2"},
	"bob":               {"bob, the only generation"},
}

func TestGenerateGoldenFolders(t *testing.T) {
	if !*generateGolden {
		t.Skip("run with -golden.generate to write missing golden folders")
	}
	ctx := context.Background()
	root := filepath.Join("testdata", "golden", "layout-v1")
	if _, err := os.Stat(root); err == nil {
		t.Skipf("%s exists: left alone", root)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := file.New(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for name, gens := range goldenBlobs {
		v := backends.Absent
		for _, g := range gens {
			if v, err = b.Put(ctx, name, []byte(g), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Close()

	vb, err := file.New(filepath.Join(root, "vault"))
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Close()
	vt, err := vault.Create(ctx, vb, vault.WithPassphrase([]byte(goldenPassphrase)), vault.WithKDFParams(kdf.Floor))
	if err != nil {
		t.Fatal(err)
	}
	defer vt.Close()
	st := vt.Store("trader-1")
	js, err := os.ReadFile("../../vault/testdata/session-after-login.json")
	if err != nil {
		t.Fatal(err)
	}
	const fake = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJGQUtFIjoiYWNjZXNzIn0.FAKEsigA"
	ver, err := st.Seal(ctx, bytes.ReplaceAll(js, []byte(fake), []byte("golden-access-1")), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Seal(ctx, bytes.ReplaceAll(js, []byte(fake), []byte("golden-access-2")), ver); err != nil {
		t.Fatal(err)
	}
}

// copyGolden copies the golden folder testdata/golden/rel into a fresh
// temp folder with the modes the backend requires (0700 folders, 0600
// files) and returns its path.
func copyGolden(t testing.TB, rel string) string {
	t.Helper()
	src := filepath.Join("testdata", "golden", rel)
	dst := filepath.Join(t.TempDir(), "vault")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, r)
		if d.IsDir() {
			if d.Name() == "locks" {
				return fs.SkipDir // lock files are made again on use
			}
			return os.Mkdir(out, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGoldenLayoutV1Opens opens the layout-1 golden folders: every blob
// and its previous generation read back as written, and the real vault
// opens with its passphrase.
func TestGoldenLayoutV1Opens(t *testing.T) {
	ctx := context.Background()
	b, err := file.New(copyGolden(t, "layout-v1/blobs"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	checkGoldenBlobs(t, b)

	vb, err := file.New(copyGolden(t, "layout-v1/vault"))
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Close()
	checkGoldenVault(t, ctx, vb, "golden-access-2")
}

// checkGoldenBlobs checks that b holds goldenBlobs: the newest generation
// of each name current, the one before it (if any) previous.
func checkGoldenBlobs(t *testing.T, b *file.Backend) {
	t.Helper()
	ctx := context.Background()
	names, err := b.List(ctx)
	if err != nil || len(names) != 2 || names[0] != "alice" || names[1] != "bob" {
		t.Fatalf("List = %q, %v; want [alice bob]", names, err)
	}
	for name, gens := range goldenBlobs {
		got, _, err := b.Get(ctx, name)
		if err != nil || string(got) != gens[len(gens)-1] {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, err, gens[len(gens)-1])
		}
		prev, _, err := b.Previous(ctx, name)
		switch {
		case len(gens) == 1 && !errors.Is(err, backends.ErrNotFound):
			t.Errorf("Previous(%q) = %q, %v; want ErrNotFound", name, prev, err)
		case len(gens) > 1 && (err != nil || string(prev) != gens[len(gens)-2]):
			t.Errorf("Previous(%q) = %q, %v; want %q", name, prev, err, gens[len(gens)-2])
		}
	}
}

// checkGoldenVault opens the golden vault in b and checks its session's
// access token.
func checkGoldenVault(t *testing.T, ctx context.Context, b backends.Backend, want string) {
	t.Helper()
	vt, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(goldenPassphrase)))
	if err != nil {
		t.Fatal(err)
	}
	defer vt.Close()
	plain, _, err := vt.Store("trader-1").Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plain, []byte(`"`+want+`"`)) {
		t.Errorf("golden session: want access token %q", want)
	}
}
