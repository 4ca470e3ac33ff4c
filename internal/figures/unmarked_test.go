package figures

import (
	"strings"
	"testing"
)

func TestUnmarked(t *testing.T) {
	doc := strings.Join([]string{
		"A save takes 1.2 ms and is 1.08x the write, 3 % more, at 100 calls/s.", // 1: four figures
		"Marked: <!--bench compare Compare x-a %.2fx-->1.20x<!--/bench--> and <!--fig crash/saves.kills-->41<!--/fig--> kills.",
		"A goal of <!--const-->1.10x<!--/const-->, a `100ms` target, 2 KiB and 64 MiB of input, issue 17, commit 09690f1.",
		"<!-- a comment: 5x",
		"still the comment: 7 ms -->",
		"```",
		"go test -benchtime 300ms",
		"```",
		"It allocates 5.4 KB in 21 allocations; 22 of 24 landed; [link](bench/x-1.5x.txt).", // 9: three
		"| situation | bound | measured |",
		"|---|---|---|",
		"| 3 s tokens | <!--const-->150 ms<!--/const--> | 2,378 calls, p99 <!--fig a.b-->1<!--/fig--> ms |", // 12: "3 s" and the measured cell
		"| x | y | p99 <!--fig a.b-->1<!--/fig--> ms |",
		"<!--benchtable compare Compare-->",
		"| Compare | 5 | 1.01 ms |",
		"<!--/benchtable-->",
		"## 12. Skipped",
		"1.5x here is left out",
		"## 13. Not skipped",
		"**Pending paragraph** 2.5x",
		"and 3.5x",
		"",
		"after it 4.5x",
		"| run | Measured |",
		"|:---|---:|",
		"| a | 12 |", // 26: a measured cell
	}, "\n")
	problems := Unmarked(doc, []Skip{{From: "## 12. ", Until: "## "}, {From: "**Pending", Until: ""}})
	lines := map[int]int{}
	for _, p := range problems {
		lines[p.Line]++
	}
	want := map[int]int{1: 4, 9: 3, 12: 2, 23: 1, 26: 1}
	for l, n := range want {
		if lines[l] != n {
			t.Errorf("line %d: %d problems, want %d (all: %v)", l, lines[l], n, problems)
		}
	}
	for l := range lines {
		if _, ok := want[l]; !ok {
			t.Errorf("line %d: unexpected problems (all: %v)", l, problems)
		}
	}
}

func TestRegenerateTables(t *testing.T) {
	md := "### compare\n\n    go test -bench .\n\ndate: D; loadavg-before: 1 2 3\n\n#### Compare\n\n| benchmark | ns/op |\n|---|---:|\n| Compare | 1 ms |\n\n" +
		"#### SaveBySize (by size)\n\n| size | ns/op |\n|---:|---:|\n| 1MiB | 2 ms |\n\n![SaveBySize](bench/compare-SaveBySize.svg)\n\n### other\n\n#### Compare\n\n| x |\n"
	p := ParsePlot(md)
	if p.Heads["compare"] != "date: D; loadavg-before: 1 2 3" {
		t.Fatalf("head = %q", p.Heads["compare"])
	}
	doc := "<!--benchhead compare-->old<!--/benchhead-->\n\n<!--benchtable compare Compare-->\n##### Compare\nstale\n<!--/benchtable-->\ntext\n" +
		"<!--benchtable compare SaveBySize-->\n<!--/benchtable-->\n<!--benchtable compare Gone-->\nkept\n<!--/benchtable-->\n"
	src := &Sources{Plot: p}
	got, problems := src.Regenerate(doc)
	want := "<!--benchhead compare-->date: D; loadavg-before: 1 2 3<!--/benchhead-->\n\n<!--benchtable compare Compare-->\n##### Compare\n\n| benchmark | ns/op |\n|---|---:|\n| Compare | 1 ms |\n<!--/benchtable-->\ntext\n" +
		"<!--benchtable compare SaveBySize-->\n##### SaveBySize (by size)\n\n| size | ns/op |\n|---:|---:|\n| 1MiB | 2 ms |\n\n![SaveBySize](bench/compare-SaveBySize.svg)\n<!--/benchtable-->\n<!--benchtable compare Gone-->\nkept\n<!--/benchtable-->\n"
	if got != want {
		t.Fatalf("Regenerate:\n got %q\nwant %q", got, want)
	}
	if len(problems) != 1 || problems[0].Line != 10 {
		t.Fatalf("problems = %v, want one for the Gone block on line 10", problems)
	}
	if again, _ := src.Regenerate(got); again != got {
		t.Fatalf("not idempotent:\n%s", again)
	}
	// A stale table inside a block is not an unmarked figure; the same
	// table outside one is.
	if ps := Unmarked(got, nil); len(ps) != 0 {
		t.Fatalf("Unmarked in blocks: %v", ps)
	}
	if ps := Unmarked("| benchmark | ns/op |\n|---|---:|\n| Compare | 1 ms |\n", nil); len(ps) != 1 {
		t.Fatalf("Unmarked outside a block: %v, want 1", ps)
	}
}
