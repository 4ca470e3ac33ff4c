package apicheck

import (
	"go/ast"
	"go/build"
	"go/doc"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZeroValuesDocumented checks that every exported struct type of the
// public packages says in its doc comment what its zero value is (usable
// or not), and that every option type (a func type whose name ends in
// "Option") says what a nil one does.
func TestZeroValuesDocumented(t *testing.T) {
	forPublicPackages(t, func(rel string, p *doc.Package) {
		for _, ty := range p.Types {
			for _, spec := range ty.Decl.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok || !ast.IsExported(ts.Name.Name) || ts.Assign != 0 {
					continue
				}
				doc := strings.ToLower(strings.Join(strings.Fields(ty.Doc), " "))
				switch ts.Type.(type) {
				case *ast.StructType:
					if !strings.Contains(doc, "zero value") && !strings.Contains(doc, "zero "+strings.ToLower(ts.Name.Name)) {
						t.Errorf("%s.%s: the doc comment does not say what the zero value is", rel, ts.Name.Name)
					}
				case *ast.FuncType:
					if strings.HasSuffix(ts.Name.Name, "Option") && !strings.Contains(doc, "nil") {
						t.Errorf("%s.%s: the doc comment does not say what a nil %s does", rel, ts.Name.Name, ts.Name.Name)
					}
				}
			}
		}
	})
}

// forPublicPackages calls f with the go/doc of every public library
// package of the module (not internal, not a command, not testdata), and
// fails t if the walk found fewer than five: a broken walk must not pass.
func forPublicPackages(t *testing.T, f func(rel string, p *doc.Package)) {
	t.Helper()
	root := moduleRoot(t)
	checked := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || isInternal(rel)) {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(path, 0)
		if err != nil || bp.Name == "main" {
			return nil // no Go files for this platform, or a command
		}
		f(rel, packageDoc(t, path, modulePath+"/"+rel, 0))
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("checked only %d packages: the walk is broken", checked)
	}
}
