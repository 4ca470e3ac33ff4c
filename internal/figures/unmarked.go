package figures

import (
	"fmt"
	"regexp"
	"strings"
)

// This file finds figures that no mark regenerates, anywhere in a
// document, and regenerates the benchmark tables copied from
// scripts/plot's Markdown.
//
// What is a figure. A number is a figure, and must be a fig or bench mark
// (or sit inside a generated table block), when it is
//
//   - followed by a unit of time (ns, µs, us, ms, s, min, h), a ratio (x, as
//     in 1.16x), a percentage (%) or a rate (/s, per second);
//   - a size with a decimal point (2.3 KB, 9.1 MiB): a measured size. A
//     whole size (2 KiB, 64 MiB, 2,048 bytes) is an input or a parameter;
//   - a count of allocations, instructions or calls (33,000 allocations,
//     5 system calls, 2,378 calls), or a count out of another (22 of 24);
//   - any number in a table column whose header is "measured" or starts
//     with "figure" (a column of measurements), except digits that are
//     part of a name (p99).
//
// A range (1.2–1.7 ms) is one figure. Not figures: numbers inside
// backquotes (commands, names, `100ms` targets), inside HTML comments,
// in fenced code blocks, in link targets, in a generated table block
// (<!--benchtable ...--> ... <!--/benchtable-->, which Regenerate rewrites
// whole), and in an allow-list span <!--const-->3 s<!--/const--> that marks
// a deliberate constant (a test's parameter, a timeout, a bound a test
// asserts) rather than a measurement.

var (
	num = `[0-9][0-9,]*(?:\.[0-9]+)?`
	// figureRE matches a figure in text that marks, code and comments have
	// been removed from.
	figureRE = regexp.MustCompile(`(?:^|[^0-9A-Za-z_.,])(` + num + `(?:\s*(?:–|-|to)\s*` + num + `)?` +
		`(?:\s*(?:x|%|ns|µs|us|ms|s|min|h|/s)|\s*per second` +
		`|\s+(?:[a-z-]+ )?(?:allocations|instructions|calls)))(?:[^0-9A-Za-z_]|$)`)
	// ofRE matches a count out of another: "22 of 24".
	ofRE = regexp.MustCompile(`(?:^|[^0-9A-Za-z_.,])(` + num + `\s+of\s+` + num + `)(?:[^0-9A-Za-z_.,]|$)`)
	// sizeRE matches a measured size: one with a decimal point.
	sizeRE = regexp.MustCompile(`(?:^|[^0-9A-Za-z_.,])([0-9]+\.[0-9]+\s*(?:B|KB|KiB|MB|MiB|GB|GiB)\b)`)
	// bareNumber is a digit that does not continue a name (p99, x-physical).
	bareNumber = regexp.MustCompile(`(?:^|[^A-Za-z0-9_.-])[0-9]`)
	// separatorRow is a Markdown table's row under its header: |---|:--:|.
	separatorRow = regexp.MustCompile(`^\|(?:\s*:?-+:?\s*\|)+$`)
	constRE      = regexp.MustCompile(`<!--const-->.*?<!--/const-->`)
	tickRE       = regexp.MustCompile("`[^`]*`")
	commentRE    = regexp.MustCompile(`<!--.*?-->`)
	linkRE       = regexp.MustCompile(`\]\([^)]*\)`)
	blockStart   = regexp.MustCompile(`^<!--benchtable ([A-Za-z0-9_./-]+) ([^ >]+)-->$`)
)

// Skip names a part of a document that Unmarked leaves out: from the first
// line that starts with From to the line before the next line that starts
// with Until (Until "" means up to the next blank line). It is for text
// still being converted, never for figures that stay hand-written.
type Skip struct {
	From, Until string
}

// Unmarked returns every figure in doc (see the definition above) that is
// not regenerated from a kept output: a number nobody rewrites.
func Unmarked(doc string, skips []Skip) []Problem {
	var problems []Problem
	lines := strings.Split(doc, "\n")
	fence, block, comment := false, false, false
	skipUntil, skipping := "", false
	measured := map[int]bool{} // columns of the current table that hold measurements
	for i, line := range lines {
		trim := strings.TrimSpace(line)
		if skipping {
			if (skipUntil == "" && trim == "") || (skipUntil != "" && strings.HasPrefix(line, skipUntil)) {
				skipping = false
			} else {
				continue
			}
		}
		for _, s := range skips {
			if strings.HasPrefix(line, s.From) {
				skipping, skipUntil = true, s.Until
			}
		}
		if skipping {
			continue
		}
		switch {
		case strings.HasPrefix(trim, "```"):
			fence = !fence
			continue
		case fence:
			continue
		case blockStart.MatchString(trim):
			block = true
			continue
		case trim == "<!--/benchtable-->":
			block = false
			continue
		case block:
			continue
		}
		// Multi-line HTML comments.
		if comment {
			end := strings.Index(line, "-->")
			if end < 0 {
				continue
			}
			line, comment = line[end+3:], false
		}
		text := anyRef.ReplaceAllString(line, " ")
		text = constRE.ReplaceAllString(text, " ")
		text = commentRE.ReplaceAllString(text, " ")
		if j := strings.Index(text, "<!--"); j >= 0 {
			text, comment = text[:j], true
		}
		text = tickRE.ReplaceAllString(text, " ")
		text = linkRE.ReplaceAllString(text, "]")

		if strings.HasPrefix(trim, "|") {
			cells := splitRow(text)
			switch {
			case separatorRow.MatchString(trim):
				// the separator row
			case i+1 < len(lines) && separatorRow.MatchString(strings.TrimSpace(lines[i+1])):
				// a header row: which columns hold measurements
				measured = map[int]bool{}
				for c, h := range cells {
					h = strings.ToLower(strings.TrimSpace(h))
					if strings.HasPrefix(h, "measured") || strings.HasPrefix(h, "figure") {
						measured[c] = true
					}
				}
				continue
			default:
				for c, cell := range cells {
					if measured[c] && bareNumber.MatchString(cell) {
						problems = append(problems, Problem{i + 1, strings.TrimSpace(cell), "a number written by hand in a measured column (no fig or bench mark)"})
						text = strings.Replace(text, cell, " ", 1)
					}
				}
			}
		} else {
			measured = map[int]bool{}
		}
		for _, re := range []*regexp.Regexp{figureRE, sizeRE, ofRE} {
			for _, m := range re.FindAllStringSubmatch(text, -1) {
				problems = append(problems, Problem{i + 1, strings.TrimSpace(m[1]), "a figure written by hand (no fig or bench mark, not <!--const-->)"})
			}
		}
	}
	return problems
}

// PlotTables is scripts/plot's Markdown (internal/benchmarks/cmd/plot over
// docs/bench/*.txt), cut into the parts a document copies: per set, the
// header line (date, machine, load), and per set and group (the
// benchmark's name without "Benchmark", as the "#### " heading starts),
// the group's heading, table and plot.
type PlotTables struct {
	Heads  map[string]string
	Tables map[string]map[string]string
}

// ParsePlot cuts plot's Markdown into a PlotTables.
func ParsePlot(md string) *PlotTables {
	p := &PlotTables{Heads: map[string]string{}, Tables: map[string]map[string]string{}}
	set, group := "", ""
	var cur []string
	flush := func() {
		if set != "" && group != "" {
			p.Tables[set][group] = strings.TrimRight(strings.Join(cur, "\n"), "\n")
		}
		cur, group = nil, ""
	}
	for _, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "### "):
			flush()
			set = strings.TrimSpace(line[4:])
			p.Tables[set] = map[string]string{}
		case strings.HasPrefix(line, "#### "):
			flush()
			group, _, _ = strings.Cut(strings.TrimSpace(line[5:]), " ")
			cur = []string{"##### " + line[5:]}
		case group != "":
			cur = append(cur, line)
		case set != "" && strings.HasPrefix(line, "date: "):
			p.Heads[set] = line
		}
	}
	flush()
	return p
}

var (
	tableBlock = regexp.MustCompile(`(?m)^<!--benchtable ([A-Za-z0-9_./-]+) ([^ >]+)-->\n((?s:.*?))^<!--/benchtable-->$`)
	headRef    = regexp.MustCompile(`<!--benchhead ([A-Za-z0-9_./-]+)-->(.*?)<!--/benchhead-->`)
)

// regenerateTables rewrites the table blocks and header references of doc
// from p.
func regenerateTables(doc string, p *PlotTables) (string, []Problem) {
	var problems []Problem
	lineOf := func(m []int) int { return strings.Count(doc[:m[0]], "\n") + 1 }
	var b strings.Builder
	last := 0
	for _, m := range tableBlock.FindAllStringSubmatchIndex(doc, -1) {
		set, group := doc[m[2]:m[3]], doc[m[4]:m[5]]
		b.WriteString(doc[last:m[6]])
		last = m[6]
		t, ok := p.Tables[set][group]
		if !ok {
			problems = append(problems, Problem{lineOf(m), fmt.Sprintf("<!--benchtable %s %s-->", set, group), fmt.Sprintf("scripts/plot draws no table %q from docs/bench/%s.txt", group, set)})
			continue
		}
		b.WriteString(t + "\n")
		last = m[7]
	}
	b.WriteString(doc[last:])
	doc = b.String()
	lines := strings.SplitAfter(doc, "\n")
	for i, line := range lines {
		lines[i] = headRef.ReplaceAllStringFunc(line, func(m string) string {
			g := headRef.FindStringSubmatch(m)
			h, ok := p.Heads[g[1]]
			if !ok {
				problems = append(problems, Problem{i + 1, m, fmt.Sprintf("docs/bench/%s.txt has no header scripts/plot reads", g[1])})
				return m
			}
			return "<!--benchhead " + g[1] + "-->" + h + "<!--/benchhead-->"
		})
	}
	return strings.Join(lines, ""), problems
}
