package apicheck

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// modulePath is this module's path, as its go.mod says.
const modulePath = "github.com/sessionvault/sessionvault"

// moduleRoot returns the folder holding this module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if !bytes.Contains(data, []byte("module "+modulePath+"\n")) {
				t.Fatalf("%s/go.mod is not the go.mod of %s", dir, modulePath)
			}
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// isInternal reports whether a slash-separated path has an "internal"
// element, which makes it invisible outside the module.
func isInternal(rel string) bool {
	return slices.Contains(strings.Split(rel, "/"), "internal")
}

// hasExample reports whether the test file at path declares an Example
// function (a func named Example or Example_... or ExampleX with no
// receiver), which go doc shows to users.
func hasExample(path string) (bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return false, err
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
			return true, nil
		}
	}
	return false, nil
}

// publicExamples returns the test files of the public packages that hold
// an Example, or whose name starts with "example" (helpers of Examples),
// by folder relative to root (slash-separated).
func publicExamples(t *testing.T, root string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || isInternal(rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		has, err := hasExample(path)
		if err != nil {
			return err
		}
		if has || strings.HasPrefix(d.Name(), "example") {
			dir := filepath.ToSlash(filepath.Dir(rel))
			found[dir] = append(found[dir], d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestExamplesOutsideModule type-checks and vets every test file of the
// public packages that holds an Example in a module of its own, as a
// user's program would see it: it fails if such a file imports an
// internal package, is in the package it documents (package foo rather
// than foo_test, so it could use unexported names), or does not compile
// without the module's other test files. Examples therefore live in
// files of their own (example_test.go and the like), with their helpers
// in files whose names start with "example".
func TestExamplesOutsideModule(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root := moduleRoot(t)
	examples := publicExamples(t, root)
	if len(examples) == 0 {
		t.Fatal("found no example files: the walk is broken")
	}
	tmp := t.TempDir()
	fset := token.NewFileSet()
	n := 0
	for dir, files := range examples {
		want := filepath.Base(filepath.FromSlash(dir)) + "_test"
		if dir == "." {
			want = "" // the root holds no package
		}
		for _, name := range files {
			src := filepath.Join(root, filepath.FromSlash(dir), name)
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(fset, src, data, parser.ImportsOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			rel := dir + "/" + name
			if f.Name.Name != want {
				t.Errorf("%s is package %s, not %s: an Example in the package itself can use what users cannot", rel, f.Name.Name, want)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if (p == modulePath || strings.HasPrefix(p, modulePath+"/")) && isInternal(strings.TrimPrefix(p, modulePath)) {
					t.Errorf("%s imports %s, which users of the module cannot import", rel, p)
				}
			}
			dst := filepath.Join(tmp, "examples", filepath.FromSlash(dir), name)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	t.Logf("%d example files in %d packages", n, len(examples))

	// The temporary module needs the same dependency versions as this
	// one: its go.mod is ours with another module path plus a requirement
	// of ours, replaced by the checkout; go.sum is ours.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gomod = bytes.Replace(gomod, []byte("module "+modulePath+"\n"), []byte("module example.test/examples\n"), 1)
	gomod = append(gomod, []byte("\nrequire "+modulePath+" v0.0.0\n\nreplace "+modulePath+" => "+strconv.Quote(root)+"\n")...)
	if err := os.WriteFile(filepath.Join(tmp, "examples", "go.mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "examples", "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(goTool, "vet", "./...")
	cmd.Dir = filepath.Join(tmp, "examples")
	cmd.Env = append(os.Environ(),
		"GOFLAGS=-mod=mod", // fill in go.mod from the module cache
		"GOPROXY=off",      // never the network
		"GOWORK=off",
		"GOTOOLCHAIN=local",
		"GOSUMDB=off",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go vet of the Examples in a module of their own: %v\n%s", err, out)
	}
}
