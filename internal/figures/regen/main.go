// Command regen rewrites the figures quoted in SECURITY.md and
// docs/BENCHMARKS.md from the kept test and benchmark outputs
// (docs/figures/*.txt and docs/bench/*.txt), or checks that they match.
// scripts/figures runs it; see internal/figures for the reference syntax.
//
// Usage:
//
//	go run ./internal/figures/regen              rewrite both documents
//	go run ./internal/figures/regen -check       fail if a document is stale, a
//	                                             reference does not resolve, a
//	                                             table cell holds a bare number, or
//	                                             a table names a test that no
//	                                             _test.go file defines
//	go run ./internal/figures/regen -check -fresh FILE
//	                                             also: every CI reference must be
//	                                             emitted by the run that wrote FILE
//	                                             (SESSIONVAULT_FIGURES); prints the
//	                                             rows as that run regenerates them
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sessionvault/sessionvault/internal/figures"
)

// docs are the regenerated documents and the 0-based column of their
// figures table that must hold no hand-written number.
var docs = []struct {
	path string
	col  int
	// skips are parts not yet converted to marks, left out of the check
	// for unmarked figures until their owners convert them (remove the
	// entry then).
	skips []figures.Skip
}{
	{"SECURITY.md", 3, nil},
	{"docs/BENCHMARKS.md", 1, nil},
}

func main() {
	root := flag.String("root", ".", "the repository's root")
	check := flag.Bool("check", false, "check instead of rewriting")
	fresh := flag.String("fresh", "", "a SESSIONVAULT_FIGURES file of the run being checked")
	flag.Parse()
	if err := run(*root, *check, *fresh); err != nil {
		fmt.Fprintln(os.Stderr, "figures:", err)
		os.Exit(1)
	}
}

func run(root string, check bool, fresh string) error {
	kept, err := figures.LoadKept(filepath.Join(root, "docs", "figures"))
	if err != nil {
		return err
	}
	src := &figures.Sources{Kept: kept, BenchDir: filepath.Join(root, "docs", "bench")}
	failed := false
	plot, stale, err := plotTables(root, check)
	if err != nil {
		return err
	}
	for _, f := range stale {
		fmt.Fprintf(os.Stderr, "docs/bench/%s: differs from what scripts/plot draws from docs/bench/*.txt\n", f)
		failed = true
	}
	src.Plot = plot
	for _, d := range docs {
		path := filepath.Join(root, d.path)
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		doc, problems := src.Regenerate(string(old))
		problems = append(problems, figures.HandWritten(doc, d.col)...)
		problems = append(problems, figures.Unmarked(doc, d.skips)...)
		if check {
			problems = append(problems, missingTests(root, doc)...)
		}
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", d.path, p)
			failed = true
		}
		switch {
		case !check && doc != string(old):
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s: regenerated\n", d.path)
		case check && doc != string(old):
			printDiff(d.path+" (committed vs regenerated from the kept outputs)", string(old), doc)
			failed = true
		}
		if check && fresh != "" {
			ok, err := checkFresh(d.path, string(old), kept, fresh, src.BenchDir, plot)
			if err != nil {
				return err
			}
			failed = failed || !ok
		}
	}
	if failed {
		if check {
			return fmt.Errorf("check failed (scripts/figures regenerates the documents from the kept outputs)")
		}
		return fmt.Errorf("some references did not resolve")
	}
	return nil
}

// checkFresh regenerates doc with the CI figures of the run that wrote
// fresh, reports every CI reference that run did not emit, and prints the
// rows that run would change.
func checkFresh(name, doc string, kept *figures.Kept, fresh, benchDir string, plot *figures.PlotTables) (bool, error) {
	f, err := os.Open(fresh)
	if err != nil {
		return false, err
	}
	recs, err := figures.ReadRecords(f)
	f.Close()
	if err != nil {
		return false, err
	}
	src := &figures.Sources{Kept: kept, BenchDir: benchDir, Fresh: recs, Plot: plot}
	now, problems := src.Regenerate(doc)
	ok := true
	for _, p := range problems {
		if strings.HasPrefix(p.Ref, "<!--fig ") && !strings.HasPrefix(p.Ref, "<!--fig full ") {
			fmt.Fprintf(os.Stderr, "%s: this run no longer emits the figure: %s\n", name, p)
			ok = false
		}
	}
	printDiff(name+" (as this run's figures regenerate it)", doc, now)
	return ok, nil
}

// plotCommand runs scripts/plot's generator (internal/benchmarks/cmd/plot)
// over docs/bench/*.txt with its SVGs written to outDir and returns its
// Markdown. A variable so that tests can replace it.
var plotCommand = func(root, outDir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "bench", "*.txt"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for i, f := range files {
		files[i], _ = filepath.Rel(root, f)
	}
	absOut, err := filepath.Abs(outDir)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", append([]string{"run", "./internal/benchmarks/cmd/plot", "-o", absOut}, files...)...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/plot: %w", err)
	}
	return string(out), nil
}

// plotTables draws the benchmark tables and plots from docs/bench/*.txt.
// Rewriting, it writes them to docs/bench (tables.md and the SVGs, as
// scripts/plot does); checking, it draws them in a temporary folder and
// returns the files of docs/bench that differ.
func plotTables(root string, check bool) (*figures.PlotTables, []string, error) {
	bench := filepath.Join(root, "docs", "bench")
	if !check {
		md, err := plotCommand(root, bench)
		if err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(bench, "tables.md"), []byte(md), 0o644); err != nil {
			return nil, nil, err
		}
		return figures.ParsePlot(md), nil, nil
	}
	tmp, err := os.MkdirTemp("", "figures-plot-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	md, err := plotCommand(root, tmp)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "tables.md"), []byte(md), 0o644); err != nil {
		return nil, nil, err
	}
	drawn, err := os.ReadDir(tmp)
	if err != nil {
		return nil, nil, err
	}
	var stale []string
	for _, e := range drawn {
		want, err := os.ReadFile(filepath.Join(tmp, e.Name()))
		if err != nil {
			return nil, nil, err
		}
		have, err := os.ReadFile(filepath.Join(bench, e.Name()))
		if err != nil || string(have) != string(want) {
			stale = append(stale, e.Name())
		}
	}
	return figures.ParsePlot(md), stale, nil
}

var testName = regexp.MustCompile("`((?:Test|Benchmark|Example)[A-Za-z0-9_]*)(\\*?)`")

// missingTests returns the test and benchmark names quoted in doc's
// figures tables that no _test.go file under root defines (a name ending
// in * is a prefix).
func missingTests(root, doc string) []figures.Problem {
	var defined []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err == nil {
				defined = append(defined, string(b))
			}
		}
		return nil
	})
	all := strings.Join(defined, "\n")
	var problems []figures.Problem
	in := false
	for i, line := range strings.Split(doc, "\n") {
		switch strings.TrimSpace(line) {
		case "<!-- figures-table -->":
			in = true
		case "<!-- /figures-table -->":
			in = false
		}
		if !in {
			continue
		}
		for _, m := range testName.FindAllStringSubmatch(line, -1) {
			want := "func " + m[1]
			if m[2] == "" {
				want += "("
			}
			if !strings.Contains(all, want) {
				problems = append(problems, figures.Problem{Line: i + 1, Ref: m[1] + m[2], Why: "no _test.go file defines it"})
			}
		}
	}
	return problems
}

func printDiff(title, a, b string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al) != len(bl) {
		fmt.Fprintf(os.Stderr, "%s: line count %d vs %d\n", title, len(al), len(bl))
		return
	}
	header := false
	for i := range al {
		if al[i] == bl[i] {
			continue
		}
		if !header {
			fmt.Fprintf(os.Stderr, "--- %s\n", title)
			header = true
		}
		fmt.Fprintf(os.Stderr, "line %d:\n- %s\n+ %s\n", i+1, al[i], bl[i])
	}
}
