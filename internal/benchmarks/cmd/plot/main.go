// Command plot turns `go test -bench` output into SVG plots and Markdown
// tables, using only the standard library.
//
// Usage:
//
//	go run ./internal/benchmarks/cmd/plot [-o DIR] [-md FILE] FILE...
//
// A scaling benchmark is one whose last sub-benchmark element is key=NUMBER
// with an optional unit (B, KiB, MiB, k): BenchmarkSave/size=4KiB,
// BenchmarkStatus/sessions=1000. All sub-benchmarks that differ only in that
// element form a family; plot draws one SVG per family (log-log: x the
// number, y time per op), with one line for ns/op (ours) and one for each
// "NAME-ns/op" metric (a baseline timed in the same run). It writes Markdown:
// per input file, its header (command, date, machine, load), a table per
// family with its plot, and a table per other benchmark. Repeated runs
// (-count N) are summarized by their median.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func main() {
	outDir := flag.String("o", ".", "folder for the SVG files")
	mdPath := flag.String("md", "", "write Markdown tables to this file (default: standard output)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: plot [-o DIR] [-md FILE] BENCH-OUTPUT...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var md strings.Builder
	for _, p := range flag.Args() {
		if err := plotFile(p, *outDir, &md); err != nil {
			fatal(fmt.Errorf("%s: %w", p, err))
		}
	}
	if *mdPath == "" {
		fmt.Print(md.String())
		return
	}
	if err := os.WriteFile(*mdPath, []byte(md.String()), 0o644); err != nil {
		fatal(err)
	}
}

// plotFile reads one file of benchmark output, draws an SVG per family
// (named SET-FAMILY.svg, SET being the file's base name) and appends to md
// a section: the file's header (command, date, machine, load) and a table
// per benchmark.
func plotFile(path, outDir string, md *strings.Builder) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runs := map[string]*bench{}
	var order []string
	hdr, err := parse(f, runs, &order)
	if err != nil {
		return err
	}
	set := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	fmt.Fprintf(md, "### %s\n\n", set)
	if c := hdr["command"]; c != "" {
		fmt.Fprintf(md, "    %s\n\n", c)
	}
	var facts []string
	for _, k := range []string{"date", "machine", "go", "filesystem", "loadavg-before", "loadavg-after"} {
		if v := hdr[k]; v != "" {
			facts = append(facts, k+": "+v)
		}
	}
	if len(facts) > 0 {
		fmt.Fprintf(md, "%s\n\n", strings.Join(facts, "; "))
	}
	inFamily := map[string]bool{}
	for _, fam := range families(runs, order) {
		if len(fam.points) < 2 {
			continue
		}
		for _, p := range fam.points {
			inFamily[p.b.name] = true
		}
		name := set + "-" + fileName(fam.name) + ".svg"
		if err := os.WriteFile(filepath.Join(outDir, name), []byte(fam.svg()), 0o644); err != nil {
			return err
		}
		fam.markdown(md, name)
	}
	// Everything else: one table per top-level benchmark, a row per run name.
	var groups []string
	rows := map[string][]*bench{}
	for _, n := range order {
		if inFamily[n] {
			continue
		}
		top, _, _ := strings.Cut(n, "/")
		if _, ok := rows[top]; !ok {
			groups = append(groups, top)
		}
		rows[top] = append(rows[top], runs[n])
	}
	for _, g := range groups {
		table(md, g, rows[g])
	}
	return nil
}

// table writes one Markdown table: a row per benchmark, a column per unit,
// each cell the median over runs.
func table(w *strings.Builder, group string, bs []*bench) {
	var units []string
	seen := map[string]bool{}
	for _, b := range bs {
		for _, u := range b.units {
			if !seen[u] && u != "MB/s" {
				seen[u] = true
				units = append(units, u)
			}
		}
	}
	fmt.Fprintf(w, "#### %s\n\n", strings.TrimPrefix(group, "Benchmark"))
	fmt.Fprintf(w, "| benchmark | runs | %s |\n", strings.Join(units, " | "))
	fmt.Fprintf(w, "|---|---:|%s\n", strings.Repeat("---:|", len(units)))
	for _, b := range bs {
		cells := make([]string, len(units))
		runs := 0
		for i, u := range units {
			if v, ok := b.metrics[u]; ok {
				cells[i] = formatValue(median(v), u)
				runs = max(runs, len(v))
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s |\n", strings.TrimPrefix(b.name, "Benchmark"), runs, strings.Join(cells, " | "))
	}
	w.WriteString("\n")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

// bench is every run of one benchmark: metric unit -> values.
type bench struct {
	name    string
	metrics map[string][]float64
	units   []string // in order of first appearance
}

// lineRE matches a result line: name-procs, iterations, then value/unit
// pairs.
var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// headerRE matches a "key: value" configuration line (benchstat's format).
var headerRE = regexp.MustCompile(`^([a-z][a-z0-9-]*): (.*)$`)

// parse reads benchmark results into runs (names in order of first
// appearance) and returns the "key: value" header lines (the first value of
// each key; a key seen again later, as loadavg-after is, keeps its last).
func parse(r io.Reader, runs map[string]*bench, order *[]string) (map[string]string, error) {
	hdr := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if h := headerRE.FindStringSubmatch(sc.Text()); h != nil {
			if _, ok := hdr[h[1]]; !ok || strings.HasSuffix(h[1], "-after") {
				hdr[h[1]] = h[2]
			}
			continue
		}
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		if len(fields)%2 != 0 {
			continue
		}
		b := runs[m[1]]
		if b == nil {
			b = &bench{name: m[1], metrics: map[string][]float64{}}
			runs[m[1]] = b
			*order = append(*order, m[1])
		}
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in %q", fields[i], sc.Text())
			}
			u := fields[i+1]
			if _, ok := b.metrics[u]; !ok {
				b.units = append(b.units, u)
			}
			b.metrics[u] = append(b.metrics[u], v)
		}
	}
	return hdr, sc.Err()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// paramRE matches the last element of a scaling benchmark's name.
var paramRE = regexp.MustCompile(`^(.*)/(\w+)=([0-9.]+)(B|KiB|MiB|GiB|k|M|µs|us|ms|s)?$`)

var unitScale = map[string]float64{
	"": 1, "k": 1e3, "M": 1e6, // counts
	"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, // byte sizes
	"µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9, // durations, in ns
}

// kind is what a family's x axis counts.
type kind int

const (
	count kind = iota
	byteSize
	duration
)

var unitKind = map[string]kind{
	"B": byteSize, "KiB": byteSize, "MiB": byteSize, "GiB": byteSize,
	"µs": duration, "us": duration, "ms": duration, "s": duration,
}

type point struct {
	x     float64
	label string
	b     *bench
}

type family struct {
	name   string // benchmark name without the parameter
	key    string // the parameter's name
	kind   kind   // what x counts
	points []point
}

func families(runs map[string]*bench, order []string) []*family {
	byName := map[string]*family{}
	var fams []*family
	for _, n := range order {
		m := paramRE.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		x, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		x *= unitScale[m[4]]
		id := m[1] + "/" + m[2]
		f := byName[id]
		if f == nil {
			f = &family{name: m[1], key: m[2], kind: unitKind[m[4]]}
			byName[id] = f
			fams = append(fams, f)
		}
		f.points = append(f.points, point{x: x, label: m[3] + m[4], b: runs[n]})
	}
	for _, f := range fams {
		sort.SliceStable(f.points, func(i, j int) bool { return f.points[i].x < f.points[j].x })
	}
	return fams
}

// series returns the time-per-op series of f: "ns/op" first (ours), then
// every "NAME-ns/op".
func (f *family) series() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range f.points {
		for _, u := range p.b.units {
			if (u == "ns/op" || strings.HasSuffix(u, "-ns/op")) && !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

func seriesLabel(u string) string {
	if u == "ns/op" {
		return "sessionvault"
	}
	return strings.TrimSuffix(u, "-ns/op")
}

func fileName(s string) string {
	s = strings.TrimPrefix(s, "Benchmark")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

func (f *family) markdown(w *strings.Builder, svg string) {
	var units []string
	seen := map[string]bool{}
	for _, p := range f.points {
		for _, u := range p.b.units {
			if !seen[u] && u != "MB/s" {
				seen[u] = true
				units = append(units, u)
			}
		}
	}
	fmt.Fprintf(w, "#### %s (by %s)\n\n", strings.TrimPrefix(f.name, "Benchmark"), f.key)
	fmt.Fprintf(w, "| %s | %s |\n", f.key, strings.Join(units, " | "))
	fmt.Fprintf(w, "|---:|%s\n", strings.Repeat("---:|", len(units)))
	for _, p := range f.points {
		cells := make([]string, len(units))
		for i, u := range units {
			if v, ok := p.b.metrics[u]; ok {
				cells[i] = formatValue(median(v), u)
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", p.label, strings.Join(cells, " | "))
	}
	fmt.Fprintf(w, "\n![%s](bench/%s)\n\n", strings.TrimPrefix(f.name, "Benchmark"), svg)
}

// formatValue prints times with a unit, ratios with 3 digits.
func formatValue(v float64, unit string) string {
	switch {
	case strings.HasPrefix(unit, "ns/") || strings.HasSuffix(unit, "-ns/op") || strings.HasSuffix(unit, "-ns"):
		return formatDuration(v)
	case strings.HasPrefix(unit, "x-"):
		return strconv.FormatFloat(v, 'f', 3, 64) + "x"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func formatDuration(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.3g s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	}
	return fmt.Sprintf("%.3g ns", ns)
}

func formatX(x float64, k kind) string {
	switch k {
	case duration:
		return formatDuration(x)
	case byteSize:
		switch {
		case x >= 1<<20:
			return strconv.FormatFloat(x/(1<<20), 'g', 3, 64) + " MiB"
		case x >= 1<<10:
			return strconv.FormatFloat(x/(1<<10), 'g', 3, 64) + " KiB"
		}
		return strconv.FormatFloat(x, 'g', 3, 64) + " B"
	}
	switch {
	case x >= 1e6:
		return strconv.FormatFloat(x/1e6, 'g', 3, 64) + "M"
	case x >= 1e3:
		return strconv.FormatFloat(x/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// Plot geometry, in SVG user units.
const (
	width, height = 560.0, 340.0
	left, right   = 70.0, 150.0
	top, bottom   = 30.0, 45.0
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

func (f *family) svg() string {
	series := f.series()
	xmin, xmax := f.points[0].x, f.points[len(f.points)-1].x
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, p := range f.points {
		for _, u := range series {
			if v, ok := p.b.metrics[u]; ok {
				m := median(v)
				if m > 0 {
					ymin, ymax = min(ymin, m), max(ymax, m)
				}
			}
		}
	}
	if math.IsInf(ymin, 1) {
		ymin, ymax = 1, 10
	}
	// Log axes padded to whole decades.
	lx0, lx1 := math.Log10(xmin), math.Log10(xmax)
	if lx1 == lx0 {
		lx1 = lx0 + 1
	}
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if ly1 == ly0 {
		ly1 = ly0 + 1
	}
	pw, ph := width-left-right, height-top-bottom
	px := func(x float64) float64 { return left + (math.Log10(x)-lx0)/(lx1-lx0)*pw }
	py := func(y float64) float64 { return top + ph - (math.Log10(y)-ly0)/(ly1-ly0)*ph }

	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="%g" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", left, esc(strings.TrimPrefix(f.name, "Benchmark")+" by "+f.key))
	// Axes and grid.
	fmt.Fprintf(&s, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	for d := ly0; d <= ly1; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(&s, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(&s, `<text x="%g" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-5, y, esc(formatDuration(math.Pow(10, d))))
	}
	for _, p := range f.points {
		x := px(p.x)
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#eee"/>`+"\n", x, top, x, top+ph)
		fmt.Fprintf(&s, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, top+ph+15, esc(formatX(p.x, f.kind)))
	}
	fmt.Fprintf(&s, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+pw/2, height-8, esc(f.key+" (log)"))
	fmt.Fprintf(&s, `<text x="14" y="%g" text-anchor="middle" transform="rotate(-90 14 %g)">time per op (log)</text>`+"\n", top+ph/2, top+ph/2)
	// Series.
	for i, u := range series {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range f.points {
			if v, ok := p.b.metrics[u]; ok && median(v) > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.x), py(median(v))))
			}
		}
		fmt.Fprintf(&s, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		for _, pt := range pts {
			xy := strings.Split(pt, ",")
			fmt.Fprintf(&s, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], color)
		}
		ly := top + 10 + float64(i)*16
		fmt.Fprintf(&s, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"/>`+"\n", left+pw+10, ly, left+pw+30, ly, color)
		fmt.Fprintf(&s, `<text x="%g" y="%g" dominant-baseline="middle">%s</text>`+"\n", left+pw+35, ly, esc(seriesLabel(u)))
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func esc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}
