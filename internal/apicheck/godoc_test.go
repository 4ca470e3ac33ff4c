package apicheck

import (
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// packageDoc returns the go/doc view of the package in dir, built from
// the files the current GOOS and GOARCH compile, as `go doc` shows it.
func packageDoc(t *testing.T, dir, importPath string, mode doc.Mode) *doc.Package {
	t.Helper()
	bp, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("%s: %v", importPath, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, importPath, mode)
	if err != nil {
		t.Fatalf("%s: %v", importPath, err)
	}
	return p
}

// TestMethodsInGoDoc checks that the KeyStore methods of the two keychain
// packages are declared on their own types, with doc comments, so that
// `go doc ./backends/keychain Keychain` lists them.
func TestMethodsInGoDoc(t *testing.T) {
	root := moduleRoot(t)
	for _, c := range []struct{ pkg, typ string }{
		{"backends/keychain", "Keychain"},
		{"backends/keyring", "Keyring"},
	} {
		p := packageDoc(t, filepath.Join(root, filepath.FromSlash(c.pkg)), modulePath+"/"+c.pkg, 0)
		var typ *doc.Type
		for _, ty := range p.Types {
			if ty.Name == c.typ {
				typ = ty
			}
		}
		if typ == nil {
			t.Errorf("%s: no type %s", c.pkg, c.typ)
			continue
		}
		methods := map[string]*doc.Func{}
		for _, m := range typ.Methods {
			methods[m.Name] = m
		}
		for _, name := range []string{"GetKey", "PutKey", "DeleteKey", "Probe", "Backend"} {
			m := methods[name]
			switch {
			case m == nil:
				t.Errorf("go doc %s %s does not list %s", c.pkg, c.typ, name)
			case m.Level != 0:
				t.Errorf("%s.%s.%s is promoted from an embedded type, not declared", c.pkg, c.typ, name)
			case !strings.HasPrefix(m.Doc, name+" "):
				t.Errorf("%s.%s.%s has no doc comment starting with its name", c.pkg, c.typ, name)
			}
		}
	}
}

// TestNoForeignEmbedding checks every public package for exported struct
// types that embed a type of another package: `go doc` shows such a field
// but none of the methods it promotes (go/doc sees one package at a time),
// so users would not find them. Such a type declares the methods its users
// call instead, as the keychain types do.
func TestNoForeignEmbedding(t *testing.T) {
	forPublicPackages(t, func(rel string, p *doc.Package) {
		for _, ty := range p.Types {
			for _, spec := range ty.Decl.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok || !ast.IsExported(ts.Name.Name) {
					continue
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, f := range st.Fields.List {
					if len(f.Names) != 0 {
						continue
					}
					typ := f.Type
					if star, ok := typ.(*ast.StarExpr); ok {
						typ = star.X
					}
					if sel, ok := typ.(*ast.SelectorExpr); ok {
						t.Errorf("%s: %s embeds %s.%s, whose methods go doc does not list: make it a named field and declare the methods",
							rel, ts.Name.Name, sel.X, sel.Sel.Name)
					}
				}
			}
		}
	})
}
