package figures

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1069: "1,069", 1234567: "1,234,567", -1600: "-1,600"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// keep writes a kept output file into dir.
func keep(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRegenerate(t *testing.T) {
	dir := t.TempDir()
	keep(t, dir, "2026-12-01T0000Z-aaaa-ci.txt", "commit: aaaa\nok  pkg 1s\n"+
		`{"name":"crash/saves","test":"TestCrashSaves","counts":{"kills":40,"lost":0}}`+"\n"+
		`{"name":"tamper/header","test":"TestTamperHeader","counts":{"inputs":2292},"notes":{"header_bytes":"226"}}`+"\n")
	// A newer file with only one package rerun replaces that record only.
	keep(t, dir, "2026-12-02T0000Z-bbbb-ci.txt", `{"name":"crash/saves","test":"TestCrashSaves","counts":{"kills":41,"lost":0}}`+"\n")
	keep(t, dir, "2026-12-01T0000Z-aaaa-full.txt", `{"name":"crash/saves","test":"TestCrashSaves","counts":{"kills":1500,"lost":0}}`+"\n")
	bench := t.TempDir()
	keep(t, bench, "compare.txt", "date: x\nBenchmarkCompare-2 10 100 ns/op 1.5 x-a\nBenchmarkCompare-2 10 100 ns/op 1.1 x-a\nBenchmarkCompare-2 10 100 ns/op 1.2 x-a\nPASS\n")
	kept, err := LoadKept(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := &Sources{Kept: kept, BenchDir: bench}
	doc := "| a | <!--fig crash/saves.kills-->?<!--/fig--> kills / <!--fig full crash/saves.kills-->1<!--/fig-->, <!--fig tamper/header.header_bytes-->0<!--/fig--> B, " +
		"<!--bench compare Compare x-a %.2fx-->?<!--/bench--> <!--bench compare Compare max:x-a %.1f-->?<!--/bench--> <!--bench compare Compare inv:x-a %.3f-->?<!--/bench--> |\n"
	got, problems := src.Regenerate(doc)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := "| a | <!--fig crash/saves.kills-->41<!--/fig--> kills / <!--fig full crash/saves.kills-->1,500<!--/fig-->, <!--fig tamper/header.header_bytes-->226<!--/fig--> B, " +
		"<!--bench compare Compare x-a %.2fx-->1.20x<!--/bench--> <!--bench compare Compare max:x-a %.1f-->1.5<!--/bench--> <!--bench compare Compare inv:x-a %.3f-->0.833<!--/bench--> |\n"
	if got != want {
		t.Fatalf("Regenerate:\n got %s\nwant %s", got, want)
	}
	if again, _ := src.Regenerate(got); again != got {
		t.Fatalf("not idempotent:\n%s", again)
	}

	// A reference no kept output has, or a key the record lacks, is a
	// problem and keeps its old value; so is a missing bench file.
	bad := "x <!--fig crash/gone.kills-->7<!--/fig--> <!--fig crash/saves.nokey-->8<!--/fig--> <!--bench nosuch Compare x-a-->9<!--/bench-->\n"
	out, problems := src.Regenerate(bad)
	if out != bad || len(problems) != 3 {
		t.Fatalf("Regenerate(bad) = %q, %v", out, problems)
	}
	for i, want := range []string{`no ci run kept a "crash/gone" record`, `has no figure "nokey"`, "nosuch.txt"} {
		if !strings.Contains(problems[i].String(), want) {
			t.Errorf("problem %d = %q, want it to say %q", i, problems[i], want)
		}
	}

	// Fresh records (CI's own run) replace the kept CI figures.
	src.Fresh = map[string]*Record{"crash/saves": {Name: "crash/saves", Counts: map[string]int64{"kills": 39}}}
	got, problems = src.Regenerate(doc)
	if len(problems) != 1 || !strings.Contains(got, "-->39<") || !strings.Contains(got, "-->1,500<") {
		t.Fatalf("with fresh records: %v\n%s", problems, got)
	}
}

func TestHandWritten(t *testing.T) {
	doc := strings.Join([]string{
		"| 1 | 2 |", // outside the markers: not checked
		"<!-- figures-table -->",
		"| goal 1.10x | <!--fig a.b-->4<!--/fig--> kills, `sessions=10` |",
		"|---|---|",
		"| goal | 17 kills |",
		"| goal | `x | y` <!--bench s n u-->1<!--/bench--> |",
		"<!-- /figures-table -->",
		"| 3 | 4 |",
	}, "\n")
	problems := HandWritten(doc, 1)
	if len(problems) != 1 || problems[0].Line != 5 {
		t.Fatalf("HandWritten = %v, want line 5 only", problems)
	}
}

func TestReadBench(t *testing.T) {
	b, err := ReadBench(strings.NewReader("goos: linux\nBenchmarkKeyFetch/keyctl-2 \t 100\t 2000 ns/op\t 3.5 x-baseline\nBenchmarkX 5 1 ns/op\nok x 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := b.Stat("KeyFetch/keyctl", "x-baseline"); !ok || v != 3.5 {
		t.Fatalf("KeyFetch/keyctl x-baseline = %v, %v", v, ok)
	}
	if _, ok := b.Stat("X", "ns/op"); !ok {
		t.Fatal("a benchmark without a -N suffix was not read")
	}
	if _, ok := b.Stat("KeyFetch/keyctl", "bogus:x-baseline"); ok {
		t.Fatal("an unknown statistic was accepted")
	}
}
