package figures

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// This file is the other half of the loop: it reads the figures that test
// runs kept (docs/figures/*.txt, docs/bench/*.txt) and rewrites the numbers
// quoted in SECURITY.md and docs/BENCHMARKS.md from them.
//
// A number in a document names where it comes from in an HTML comment just
// before it, and ends with a closing comment:
//
//	<!--fig crash/saves.kills-->40<!--/fig-->            CI (bounded) run
//	<!--fig full crash/saves.kills-->500<!--/fig-->      SESSIONVAULT_LONG=1 run
//	<!--bench compare Compare x-physical-med %.3fx-->1.093x<!--/bench-->
//
// A fig reference is the name given to New, a dot, and a counter or note
// key. A bench reference is the set (docs/bench/SET.txt), the benchmark's
// name without "Benchmark" and the -N suffix, the metric's unit, and an
// optional fmt verb (default %.3g); the value is the median over the runs
// in the file (or, with a "min:", "max:" or "inv:" prefix on the unit,
// the smallest run, the largest, or 1 / the median).
//
// Two more references copy scripts/plot's drawing of docs/bench (see
// PlotTables): a header line, <!--benchhead SET-->...<!--/benchhead-->,
// and a whole table block, from a line <!--benchtable SET GROUP--> to a
// line <!--/benchtable-->. References work anywhere in a document;
// Unmarked (unmarked.go) finds the figures outside them.

// Record is one figures line as Report appends it to SESSIONVAULT_FIGURES.
type Record struct {
	Name   string            `json:"name"`
	Test   string            `json:"test"`
	Counts map[string]int64  `json:"counts"`
	Notes  map[string]string `json:"notes,omitempty"`
}

// Value returns the figure key of r as text (counts, and notes that are
// integers, with thousands separators; other notes as written) and
// whether r has it.
func (r *Record) Value(key string) (string, bool) {
	if n, ok := r.Counts[key]; ok {
		return Thousands(n), true
	}
	if s, ok := r.Notes[key]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Thousands(n), true
		}
		return s, true
	}
	return "", false
}

// Thousands formats n with a comma every three digits, as the documents
// write numbers (1,600).
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ReadRecords reads the records of a kept output: every line that starts
// with `{"name":` is one record; other lines (the header, go test's own
// output) are skipped. A name reported twice keeps its last record.
func ReadRecords(r io.Reader) (map[string]*Record, error) {
	out := make(map[string]*Record)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.HasPrefix(string(line), `{"name":`) {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("figures: bad record %.80q: %w", line, err)
		}
		out[rec.Name] = &rec
	}
	return out, sc.Err()
}

// Kept is the figures of every kept output in a folder, per mode ("ci" or
// "full"): for each name, the record of the newest file that has it.
type Kept struct {
	// Records maps mode to name to record.
	Records map[string]map[string]*Record
	// Files maps mode to name to the file the record came from.
	Files map[string]map[string]string
}

// KeptFileMode returns the mode of a kept output file name
// (DATE-COMMIT-MODE.txt) or "" if the name is not one.
func KeptFileMode(name string) string {
	for _, m := range []string{"ci", "full"} {
		if strings.HasSuffix(name, "-"+m+".txt") {
			return m
		}
	}
	return ""
}

// LoadKept reads every DATE-COMMIT-MODE.txt file in dir. Names sort by
// date, so a later file's record of a name replaces an earlier one's.
func LoadKept(dir string) (*Kept, error) {
	k := &Kept{Records: map[string]map[string]*Record{}, Files: map[string]map[string]string{}}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && KeptFileMode(e.Name()) != "" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		mode := KeptFileMode(n)
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		recs, err := ReadRecords(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if k.Records[mode] == nil {
			k.Records[mode] = map[string]*Record{}
			k.Files[mode] = map[string]string{}
		}
		for name, r := range recs {
			k.Records[mode][name] = r
			k.Files[mode][name] = n
		}
	}
	return k, nil
}

// Bench is the benchmark results of one kept docs/bench/SET.txt: per
// benchmark name (without "Benchmark" and the -N suffix), per unit, the
// values of every run.
type Bench map[string]map[string][]float64

// ReadBench parses go test -bench output.
func ReadBench(r io.Reader) (Bench, error) {
	b := Bench{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if b[name] == nil {
			b[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b[name][f[i+1]] = append(b[name][f[i+1]], v)
		}
	}
	return b, sc.Err()
}

// Median returns the median of the values of unit in benchmark name.
func (b Bench) Median(name, unit string) (float64, bool) {
	return b.Stat(name, unit)
}

// Stat returns a statistic over the runs of unit in benchmark name. unit
// may carry a prefix: "min:" or "max:" for the smallest or largest run,
// "inv:" for 1 / the median (a ratio read the other way round), "ms:" or
// "us:" for a median in nanoseconds shown in milliseconds or
// microseconds; without one it is the median.
func (b Bench) Stat(name, unit string) (float64, bool) {
	stat, u, ok := strings.Cut(unit, ":")
	if !ok {
		stat, u = "median", unit
	}
	vs := b[name][u]
	if len(vs) == 0 {
		return 0, false
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	switch stat {
	case "median":
		return med, true
	case "min":
		return s[0], true
	case "max":
		return s[len(s)-1], true
	case "inv":
		return 1 / med, true
	case "ms": // a median in ns, shown in ms
		return med / 1e6, true
	case "us": // a median in ns, shown in µs
		return med / 1e3, true
	}
	return 0, false
}

var (
	figRef   = regexp.MustCompile(`<!--fig (?:(full) )?([^ >]+)\.([A-Za-z0-9_-]+)-->(.*?)<!--/fig-->`)
	benchRef = regexp.MustCompile(`<!--bench ([A-Za-z0-9_./-]+) ([^ >]+) ([^ >]+)(?: ([^>]+))?-->(.*?)<!--/bench-->`)
	anyRef   = regexp.MustCompile(`<!--(?:fig|bench) .*?<!--/(?:fig|bench)-->`)
)

// Sources are the kept outputs a document is regenerated from.
type Sources struct {
	Kept *Kept
	// BenchDir is the folder of the kept benchmark outputs (docs/bench).
	BenchDir string
	// Fresh, when set, replaces the CI figures: the records of the run
	// being checked (CI's own bounded run).
	Fresh map[string]*Record
	// Plot, when set, is scripts/plot's Markdown of docs/bench: the
	// source of the table blocks (<!--benchtable SET GROUP-->) and
	// header references (<!--benchhead SET-->) of a document.
	Plot *PlotTables

	bench map[string]Bench
}

// Problem is a reference that does not resolve: its line in the document,
// the reference and why.
type Problem struct {
	Line int
	Ref  string
	Why  string
}

// String is the problem as one line: "line N: REF: WHY".
func (p Problem) String() string { return fmt.Sprintf("line %d: %s: %s", p.Line, p.Ref, p.Why) }

func (s *Sources) benchSet(set string) (Bench, error) {
	if b, ok := s.bench[set]; ok {
		return b, nil
	}
	if s.bench == nil {
		s.bench = map[string]Bench{}
	}
	f, err := os.Open(filepath.Join(s.BenchDir, set+".txt"))
	if err != nil {
		s.bench[set] = nil
		return nil, err
	}
	defer f.Close()
	b, err := ReadBench(f)
	s.bench[set] = b
	return b, err
}

func (s *Sources) fig(mode, name, key string) (string, string) {
	var recs map[string]*Record
	fresh := mode == "ci" && s.Fresh != nil
	if fresh {
		recs = s.Fresh
	} else if s.Kept != nil {
		recs = s.Kept.Records[mode]
	}
	r, ok := recs[name]
	switch {
	case !ok && fresh:
		return "", fmt.Sprintf("the run being checked emitted no %q record", name)
	case !ok:
		return "", fmt.Sprintf("no %s run kept a %q record", mode, name)
	}
	v, ok := r.Value(key)
	if !ok {
		return "", fmt.Sprintf("the %s record %q (test %s) has no figure %q", mode, name, r.Test, key)
	}
	return v, ""
}

// Regenerate rewrites every reference in doc from s and returns the new
// text and the references that did not resolve (those keep their old
// value).
func (s *Sources) Regenerate(doc string) (string, []Problem) {
	var problems []Problem
	if s.Plot != nil {
		doc, problems = regenerateTables(doc, s.Plot)
	}
	lines := strings.SplitAfter(doc, "\n")
	for i, line := range lines {
		line = figRef.ReplaceAllStringFunc(line, func(m string) string {
			g := figRef.FindStringSubmatch(m)
			mode := g[1]
			if mode == "" {
				mode = "ci"
			}
			v, why := s.fig(mode, g[2], g[3])
			if why != "" {
				problems = append(problems, Problem{i + 1, m, why})
				return m
			}
			return strings.Replace(m, ">"+g[4]+"<", ">"+v+"<", 1)
		})
		line = benchRef.ReplaceAllStringFunc(line, func(m string) string {
			g := benchRef.FindStringSubmatch(m)
			b, err := s.benchSet(g[1])
			if err != nil {
				problems = append(problems, Problem{i + 1, m, err.Error()})
				return m
			}
			med, ok := b.Stat(g[2], g[3])
			if !ok {
				problems = append(problems, Problem{i + 1, m, fmt.Sprintf("docs/bench/%s.txt has no %s of Benchmark%s", g[1], g[3], g[2])})
				return m
			}
			verb := g[4]
			if verb == "" {
				verb = "%.3g"
			}
			v := fmt.Sprintf(verb, med)
			if math.IsNaN(med) {
				v = "NaN"
			}
			return strings.Replace(m, "-->"+g[5]+"<", "-->"+v+"<", 1)
		})
		lines[i] = line
	}
	return strings.Join(lines, ""), problems
}

var digit = regexp.MustCompile(`[0-9]`)

// HandWritten returns the table rows between the markers
// "<!-- figures-table -->" and "<!-- /figures-table -->" whose column col
// (0-based) has a digit outside a reference: a figure nobody regenerates.
func HandWritten(doc string, col int) []Problem {
	var problems []Problem
	in := false
	for i, line := range strings.Split(doc, "\n") {
		switch strings.TrimSpace(line) {
		case "<!-- figures-table -->":
			in = true
			continue
		case "<!-- /figures-table -->":
			in = false
			continue
		}
		if !in || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := splitRow(line)
		if col >= len(cells) {
			continue
		}
		rest := anyRef.ReplaceAllString(cells[col], "")
		// Backquoted text (a test name, a command) is not a figure.
		rest = regexp.MustCompile("`[^`]*`").ReplaceAllString(rest, "")
		if loc := digit.FindStringIndex(rest); loc != nil {
			problems = append(problems, Problem{i + 1, strings.TrimSpace(cells[col]), "a number written by hand (no fig or bench reference)"})
		}
	}
	return problems
}

// splitRow splits a Markdown table row on the | that are not inside
// backquotes or an HTML comment.
func splitRow(line string) []string {
	var cells []string
	var cur strings.Builder
	tick, comment := false, false
	line = strings.TrimPrefix(strings.TrimSpace(line), "|")
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case !comment && c == '`':
			tick = !tick
		case !tick && strings.HasPrefix(line[i:], "<!--"):
			comment = true
		case comment && strings.HasPrefix(line[i:], "-->"):
			comment = false
		case c == '|' && !tick && !comment:
			cells = append(cells, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		cells = append(cells, cur.String())
	}
	return cells
}
