package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMissingTests(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "x_test.go"), []byte("package x\nfunc TestHeaderBitFlips(t *testing.T) {}\nfunc BenchmarkStatus1000(b *testing.B) {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := "| `TestHeaderBitFlips` |\n<!-- figures-table -->\n| `TestHeaderBitFlips`, `TestHeader*`, `BenchmarkStatus1000` |\n| `TestGone`, `TestNope*` |\n<!-- /figures-table -->\n| `TestOutside` |\n"
	problems := missingTests(root, doc)
	if len(problems) != 2 || problems[0].Ref != "TestGone" || problems[1].Ref != "TestNope*" || problems[0].Line != 4 {
		t.Fatalf("missingTests = %v, want TestGone and TestNope* on line 4", problems)
	}
}
