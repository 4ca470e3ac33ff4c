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

func TestPlotTablesStale(t *testing.T) {
	root := t.TempDir()
	bench := filepath.Join(root, "docs", "bench")
	if err := os.MkdirAll(bench, 0o755); err != nil {
		t.Fatal(err)
	}
	md := "### s\n\n#### G\n\n| a |\n"
	old := plotCommand
	defer func() { plotCommand = old }()
	plotCommand = func(root, outDir string) (string, error) {
		return md, os.WriteFile(filepath.Join(outDir, "s-G.svg"), []byte("<svg/>"), 0o644)
	}
	// Nothing drawn yet: both files are stale.
	p, stale, err := plotTables(root, true)
	if err != nil || len(stale) != 2 || p.Tables["s"]["G"] == "" {
		t.Fatalf("check before drawing: stale %v, err %v", stale, err)
	}
	// Rewriting draws them; then the check finds nothing stale.
	if _, _, err := plotTables(root, false); err != nil {
		t.Fatal(err)
	}
	if _, stale, err := plotTables(root, true); err != nil || len(stale) != 0 {
		t.Fatalf("check after drawing: stale %v, err %v", stale, err)
	}
	// A hand edit of tables.md is stale again.
	if err := os.WriteFile(filepath.Join(bench, "tables.md"), []byte(md+"| 1 |\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stale, _ := plotTables(root, true); len(stale) != 1 || stale[0] != "tables.md" {
		t.Fatalf("check after a hand edit: stale %v, want tables.md", stale)
	}
}
