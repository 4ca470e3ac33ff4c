package figures

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetCountsAndReports(t *testing.T) {
	s := New("demo")
	s.Declare("kills", "lost")
	s.Inc("kills")
	s.Add("kills", 2)
	s.Max("peak", 7)
	s.Max("peak", 3)
	s.Note("seed", "42")
	if got, want := s.String(), "demo: kills=3 lost=0 peak=7 seed=42"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if s.Get("lost") != 0 || s.Get("kills") != 3 || s.Get("absent") != 0 {
		t.Fatalf("Get: %v", s)
	}

	path := filepath.Join(t.TempDir(), "figures.jsonl")
	t.Setenv(EnvFile, path)
	s.Report(t)
	s.Report(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", data)
	}
	var rec struct {
		Name   string
		Test   string
		Counts map[string]int64
		Notes  map[string]string
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Name != "demo" || rec.Counts["kills"] != 3 || rec.Counts["lost"] != 0 || rec.Notes["seed"] != "42" || rec.Test != t.Name() {
		t.Fatalf("record %+v", rec)
	}
}

func TestProtect(t *testing.T) {
	if p := Protect(func() {}); p != nil {
		t.Fatalf("Protect of a normal return: %v", p)
	}
	p := Protect(func() {
		var m map[string]int
		//lint:ignore SA5000 the point is a runtime panic
		m["x"] = 1
	})
	if p == nil || !strings.Contains(p.Error(), "assignment to entry in nil map") {
		t.Fatalf("Protect did not recover the runtime panic: %v", p)
	}
	if !strings.Contains(string(p.Stack), "TestProtect") {
		t.Fatalf("stack does not show the panicking frame:\n%s", p.Stack)
	}
	p = Protect(func() { panic(nil) })
	if p == nil {
		t.Fatal("panic(nil) went undetected")
	}
}
