package memscan

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
)

func TestMarkerShape(t *testing.T) {
	m := NewMarker(32)
	p := m.Plain()
	defer Wipe(p)
	if len(p) != 32 || m.Len() != 32 {
		t.Fatalf("len %d", len(p))
	}
	for _, c := range p {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			t.Fatalf("marker byte %#x outside [A-Za-z0-9]", c)
		}
	}
	// The marker keeps no plain copy of itself.
	for _, pat := range m.patterns {
		if m.Matches(pat.masked) || m.Matches(pat.pad) {
			t.Fatal("marker stores itself in plain")
		}
	}
	other := NewMarker(32)
	if other.Matches(p) {
		t.Fatal("two markers collide")
	}
}

func TestExportParse(t *testing.T) {
	m := NewMarker(40)
	s := m.Export()
	if m.Matches([]byte(s)) {
		t.Fatal("Export holds the plain marker")
	}
	m2, err := ParseMarker(s)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Plain()
	defer Wipe(p)
	if !m2.Matches(p) || m2.Len() != 40 {
		t.Fatal("parsed marker does not match the original")
	}
	for _, bad := range []string{"", "zz:zz", "00:0000", s[:len(s)-2]} {
		if _, err := ParseMarker(bad); err == nil {
			t.Errorf("ParseMarker(%q) accepted", bad)
		}
	}
}

func TestMatches(t *testing.T) {
	m := NewMarker(24)
	doc := m.AppendPlain([]byte(`{"access_token":"`))
	doc = append(doc, `"}`...)
	defer Wipe(doc)
	if !m.Matches(doc) {
		t.Fatal("marker inside JSON not matched")
	}
	if m.Matches(doc[:len(doc)-4]) {
		t.Fatal("truncated marker matched")
	}
	for align := range 3 {
		raw := m.AppendPlain(make([]byte, align, 64))
		raw = append(raw, "tail"...)
		enc := []byte(base64.StdEncoding.EncodeToString(raw))
		if m.Matches(enc) {
			t.Fatalf("align %d: base64 form matched as plain", align)
		}
		if !m.MatchesAny(enc) {
			t.Fatalf("align %d: base64 form not matched", align)
		}
		Wipe(raw)
		Wipe(enc)
	}
	// %x and %X of a byte slice: caught by MatchesAny.
	p0 := m.Plain()
	for _, verb := range []string{"%x", "%X", "% x"} {
		out := []byte(fmt.Sprintf(verb, p0))
		if verb == "% x" {
			if m.MatchesAny(out) {
				t.Fatal("spaced hex is not a form we search; the test is wrong")
			}
			continue
		}
		if m.Matches(out) || !m.MatchesAny(out) {
			t.Fatalf("%s form not matched as hex", verb)
		}
	}
	Wipe(p0)
	// json.Marshal of []byte is base64: caught by MatchesAny.
	p := m.Plain()
	j, _ := json.Marshal(struct{ B []byte }{p})
	Wipe(p)
	if !m.MatchesAny(j) {
		t.Fatal("json []byte (base64) copy not matched")
	}
}

func ExampleMarker() {
	m := NewMarker(32)
	token := m.Plain()
	line := fmt.Sprintf("token=%s", token) // a leak
	Wipe(token)
	fmt.Println(m.Matches([]byte(line)))
	// Output: true
}
