package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkSave/size=512B-2   	 1000	  600000 ns/op	  550000 physical-ns/op	  1.09 x-physical	 2048 B/op	 12 allocs/op
BenchmarkSave/size=4KiB-2   	 1000	  700000 ns/op	  640000 physical-ns/op	  1.09 x-physical	 9000 B/op	 12 allocs/op
BenchmarkSave/size=512B-2   	 1000	  620000 ns/op	  560000 physical-ns/op	  1.11 x-physical	 2048 B/op	 12 allocs/op
BenchmarkSave/size=1MiB-2   	   10	 9000000 ns/op	 8500000 physical-ns/op	  1.06 x-physical	 2e+06 B/op	 12 allocs/op
BenchmarkSave/size=512B-2   	 1000	  640000 ns/op	  570000 physical-ns/op	  1.12 x-physical	 2048 B/op	 12 allocs/op
BenchmarkStatus/sessions=10-2     	  100	 1000000 ns/op
BenchmarkStatus/sessions=1000-2   	   10	 90000000 ns/op
BenchmarkCompare-2   	 1000	  600000 ns/op	 550000 physical-ns/op
loadavg-after: 0.7
loadavg-after: 0.5
BenchmarkCalibrate/target=100ms-2   	 10	  98000000 ns/op	 3 t	 48 MiB	 4 p	 0.98 x-target
BenchmarkCalibrate/target=1s-2   	 1	  1100000000 ns/op	 4 t	 256 MiB	 4 p	 1.1 x-target
PASS
`

func TestParseAndFamilies(t *testing.T) {
	runs := map[string]*bench{}
	var order []string
	hdr, err := parse(strings.NewReader(sample), runs, &order)
	if err != nil {
		t.Fatal(err)
	}
	if hdr["goos"] != "linux" || hdr["loadavg-after"] != "0.5" {
		t.Fatalf("header %v", hdr)
	}
	b := runs["BenchmarkSave/size=512B"]
	if b == nil || len(b.metrics["ns/op"]) != 3 {
		t.Fatalf("runs of size=512B not collected: %+v", b)
	}
	if m := median(b.metrics["ns/op"]); m != 620000 {
		t.Fatalf("median %v, want 620000", m)
	}
	fams := families(runs, order)
	if len(fams) != 3 {
		t.Fatalf("%d families, want 3 (Save, Status, Calibrate)", len(fams))
	}
	save := fams[0]
	if save.name != "BenchmarkSave" || save.key != "size" || save.kind != byteSize {
		t.Fatalf("family %+v", save)
	}
	var xs []float64
	for _, p := range save.points {
		xs = append(xs, p.x)
	}
	if len(xs) != 3 || xs[0] != 512 || xs[1] != 4096 || xs[2] != 1<<20 {
		t.Fatalf("x values %v", xs)
	}
	if got := save.series(); len(got) != 2 || got[0] != "ns/op" || got[1] != "physical-ns/op" {
		t.Fatalf("series %v", got)
	}
	if fams[1].kind != count {
		t.Fatal("session counts taken for byte sizes")
	}
	if c := fams[2]; c.kind != duration || c.points[1].x != 1e9 || formatX(c.points[0].x, c.kind) != "100 ms" {
		t.Fatalf("calibration targets not read as durations: %+v", c)
	}

	// The SVG is well-formed XML with one line per series.
	svg := save.svg()
	dec := xml.NewDecoder(strings.NewReader(svg))
	polylines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 2 {
		t.Fatalf("%d polylines, want 2", polylines)
	}

	var md strings.Builder
	save.markdown(&md, "Save.svg")
	for _, want := range []string{"| size | ns/op | physical-ns/op | x-physical | B/op | allocs/op |", "| 512B | 620 µs | 560 µs | 1.110x |", "![Save](bench/Save.svg)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{1500, "ns/op", "1.5 µs"},
		{2.5e6, "base-ns/op", "2.5 ms"},
		{3e9, "ns/op", "3 s"},
		{1.0934, "x-physical", "1.093x"},
		{12, "allocs/op", "12"},
		{450000, "ns/session", "450 µs"},
	} {
		if got := formatValue(c.v, c.unit); got != c.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestPlotFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "scale.txt")
	if err := os.WriteFile(in, []byte("command: go test -bench . ./x\n"+sample), 0o644); err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	if err := plotFile(in, dir, &md); err != nil {
		t.Fatal(err)
	}
	for _, svg := range []string{"scale-Save.svg", "scale-Status.svg", "scale-Calibrate.svg"} {
		if _, err := os.Stat(filepath.Join(dir, svg)); err != nil {
			t.Errorf("no %s: %v", svg, err)
		}
	}
	for _, want := range []string{"### scale\n", "    go test -bench . ./x\n", "#### Compare\n", "| Compare | 1 | 600 µs | 550 µs |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}
