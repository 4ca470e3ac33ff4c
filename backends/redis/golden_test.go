package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
)

// Golden fixtures of the Redis layouts (docs/FORMAT.md section 13), as
// the code of each layout wrote them: every key of one vault, its prefix
// cut off, every value in hex. The tests load them into the real test
// server under a fresh prefix and open them with today's code; old
// layouts must keep opening forever. layout-v1.json was written by the
// layout-1 code (before layout 2); layout-v2.json by this code, with
// -update-golden.
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden/layout-v2.json from the current code")

type goldenKey struct {
	Key     string            `json:"key"`
	Type    string            `json:"type"`
	Fields  map[string]string `json:"fields,omitempty"`
	Members []string          `json:"members,omitempty"`
	Value   string            `json:"value,omitempty"`
}

func unhex(t *testing.T, s string) string {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadGolden writes the fixture file into the test server under a fresh
// prefix and returns a Backend on it, and the prefix.
func loadGolden(t *testing.T, file string) (*Backend, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	var keys []goldenKey
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	b, prefix := newTestBackend(t)
	c := rawClient(t, redisURL(t))
	ctx := context.Background()
	for _, k := range keys {
		key := "{" + prefix + "}:" + k.Key
		switch k.Type {
		case "hash":
			var args []any
			for f, v := range k.Fields {
				args = append(args, f, unhex(t, v))
			}
			err = c.HSet(ctx, key, args...).Err()
		case "set":
			var args []any
			for _, m := range k.Members {
				args = append(args, unhex(t, m))
			}
			err = c.SAdd(ctx, key, args...).Err()
		case "string":
			err = c.Set(ctx, key, unhex(t, k.Value), 0).Err()
		default:
			t.Fatalf("%s: key %s of unknown type %q", file, k.Key, k.Type)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return b, prefix
}

// dumpVault returns every key under prefix in the fixture format.
func dumpVault(t *testing.T, prefix string) []goldenKey {
	t.Helper()
	c := rawClient(t, redisURL(t))
	ctx := context.Background()
	keys, err := c.Keys(ctx, "{"+prefix+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var out []goldenKey
	for _, k := range keys {
		typ, _ := c.Type(ctx, k).Result()
		e := goldenKey{Key: strings.TrimPrefix(k, "{"+prefix+"}:"), Type: typ}
		switch typ {
		case "hash":
			m, _ := c.HGetAll(ctx, k).Result()
			e.Fields = map[string]string{}
			for f, x := range m {
				e.Fields[f] = hex.EncodeToString([]byte(x))
			}
		case "set":
			ms, _ := c.SMembers(ctx, k).Result()
			sort.Strings(ms)
			for _, m := range ms {
				e.Members = append(e.Members, hex.EncodeToString([]byte(m)))
			}
		case "string":
			x, _ := c.Get(ctx, k).Result()
			e.Value = hex.EncodeToString([]byte(x))
		}
		out = append(out, e)
	}
	return out
}

// holds reports where under prefix (key and field) the bytes b are
// stored, whole, in any value.
func holds(t *testing.T, prefix string, b []byte) []string {
	t.Helper()
	var where []string
	for _, k := range dumpVault(t, prefix) {
		vals := map[string]string{"": k.Value}
		for f, v := range k.Fields {
			vals[f] = v
		}
		for i, m := range k.Members {
			vals[strconv.Itoa(i)] = m
		}
		for f, v := range vals {
			if x, _ := hex.DecodeString(v); len(x) > 0 && bytes.Contains(x, b) {
				where = append(where, k.Key+" "+f)
			}
		}
	}
	return where
}

// The blobs of both fixtures (golden files are written by the test below
// with the same content).
func goldenBlob(layout, name string, gen int) []byte {
	switch name {
	case "one":
		return []byte("layout-" + layout + " blob of one, its only generation")
	case backends.HeaderName:
		return []byte("layout-" + layout + " header, generation " + string(rune('0'+gen)))
	}
	return []byte("layout-" + layout + " blob of " + name + ", generation " + string(rune('0'+gen)))
}

// checkGoldenReads opens every name of a fixture: the current blob, the
// previous generation where there is one, and List.
func checkGoldenReads(t *testing.T, b *Backend, layout string) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		gens     int
		wantPrev bool
	}{{"s", 2, true}, {"one", 1, false}, {backends.HeaderName, 2, true}} {
		got, v, err := b.Get(ctx, tc.name)
		if err != nil || !bytes.Equal(got, goldenBlob(layout, tc.name, tc.gens)) || !validVersion(string(v)) {
			t.Fatalf("layout %s: Get(%s) = %q, %q, %v", layout, tc.name, got, v, err)
		}
		prev, pv, err := b.Previous(ctx, tc.name)
		if !tc.wantPrev {
			if !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("layout %s: Previous(%s) = %q, %v, want ErrNotFound", layout, tc.name, prev, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(prev, goldenBlob(layout, tc.name, tc.gens-1)) || !validVersion(string(pv)) {
			t.Fatalf("layout %s: Previous(%s) = %q, %q, %v", layout, tc.name, prev, pv, err)
		}
		if c, _ := counter(pv); c >= mustCounter(t, v) {
			t.Fatalf("layout %s: previous version %s not below current %s", layout, pv, v)
		}
	}
	list, err := b.List(ctx)
	if err != nil || !slices.Equal(list, []string{"one", "s"}) {
		t.Fatalf("layout %s: List = %q, %v", layout, list, err)
	}
}

func mustCounter(t *testing.T, v backends.Version) uint64 {
	t.Helper()
	n, ok := counter(v)
	if !ok {
		t.Fatalf("version %q has no counter", v)
	}
	return n
}

// TestGoldenLayout1 opens a vault written by the layout-1 code: every read
// works as before, and each kind of write moves the hash it touches to
// layout 2 (the blob it replaces becomes the previous generation in a
// slot; layout 1's own previous generation, pd, is dropped), while
// DropPrevious and Delete also work on a hash still in layout 1.
func TestGoldenLayout1(t *testing.T) {
	ctx := context.Background()
	t.Run("read", func(t *testing.T) {
		b, _ := loadGolden(t, "layout-v1.json")
		checkGoldenReads(t, b, "1")
		// Get of a layout-1 blob is one HMGET, as in layout 1.
		rt := &roundTrips{}
		b.client.AddHook(rt)
		if _, _, err := b.Get(ctx, backends.HeaderName); err != nil || rt.n.Load() != 1 {
			t.Fatalf("Get of a layout-1 header: %v, %d round trips, want 1", err, rt.n.Load())
		}
	})
	t.Run("put moves to layout 2", func(t *testing.T) {
		b, prefix := loadGolden(t, "layout-v1.json")
		_, v, err := b.Get(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		nv, err := b.Put(ctx, "s", []byte("new"), v)
		if err != nil {
			t.Fatal(err)
		}
		if mustCounter(t, nv) != mustCounter(t, v)+1 {
			t.Fatalf("version after the migrating Put %s, want counter of %s + 1", nv, v)
		}
		h, _ := rawClient(t, redisURL(t)).HGetAll(ctx, "{"+prefix+"}:b:s").Result()
		want := map[string]string{"layout": "2", "v": string(nv), "s": "1", "d1": "new",
			"d0": string(goldenBlob("1", "s", 2)), "pv": string(v)}
		if !maps.Equal(h, want) {
			t.Fatalf("hash after the migrating Put = %q, want %q", h, want)
		}
		prev, pv, err := b.Previous(ctx, "s")
		if err != nil || pv != v || !bytes.Equal(prev, goldenBlob("1", "s", 2)) {
			t.Fatalf("Previous after migration = %q, %q, %v", prev, pv, err)
		}
		if w := holds(t, prefix, goldenBlob("1", "s", 1)); len(w) != 0 {
			t.Fatalf("layout 1's previous generation still stored at %q", w)
		}
		// The next Put is the common path of layout 2: into slot 0.
		nv2, err := b.Put(ctx, "s", []byte("newer"), nv)
		if err != nil {
			t.Fatal(err)
		}
		if prev, pv, err := b.Previous(ctx, "s"); err != nil || pv != nv || string(prev) != "new" {
			t.Fatalf("Previous after a layout-2 Put = %q, %q, %v", prev, pv, err)
		}
		if got, gv, err := b.Get(ctx, "s"); err != nil || gv != nv2 || string(got) != "newer" {
			t.Fatalf("Get after a layout-2 Put = %q, %q, %v", got, gv, err)
		}
	})
	t.Run("put of a single generation", func(t *testing.T) {
		b, prefix := loadGolden(t, "layout-v1.json")
		_, v, _ := b.Get(ctx, "one")
		if _, err := b.Put(ctx, "one", []byte("new"), v); err != nil {
			t.Fatal(err)
		}
		prev, pv, err := b.Previous(ctx, "one")
		if err != nil || pv != v || !bytes.Equal(prev, goldenBlob("1", "one", 1)) {
			t.Fatalf("Previous = %q, %q, %v", prev, pv, err)
		}
		if lay, _ := rawClient(t, redisURL(t)).HGet(ctx, "{"+prefix+"}:b:one", "layout").Result(); lay != "2" {
			t.Fatalf("layout field %q after a Put", lay)
		}
	})
	t.Run("restore moves to layout 2", func(t *testing.T) {
		b, prefix := loadGolden(t, "layout-v1.json")
		_, v, _ := b.Get(ctx, "s")
		rv, err := b.Restore(ctx, "s", v)
		if err != nil {
			t.Fatal(err)
		}
		if got, gv, err := b.Get(ctx, "s"); err != nil || gv != rv || !bytes.Equal(got, goldenBlob("1", "s", 1)) {
			t.Fatalf("Get after Restore = %q, %q, %v", got, gv, err)
		}
		if prev, pv, err := b.Previous(ctx, "s"); err != nil || pv != v || !bytes.Equal(prev, goldenBlob("1", "s", 2)) {
			t.Fatalf("Previous after Restore = %q, %q, %v", prev, pv, err)
		}
		if lay, _ := rawClient(t, redisURL(t)).HGet(ctx, "{"+prefix+"}:b:s", "layout").Result(); lay != "2" {
			t.Fatalf("layout field %q after a Restore", lay)
		}
	})
	t.Run("drop previous", func(t *testing.T) {
		b, prefix := loadGolden(t, "layout-v1.json")
		for _, name := range []string{"s", backends.HeaderName} {
			if err := b.DropPrevious(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Previous(ctx, name); !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Previous(%s) after DropPrevious: %v", name, err)
			}
			if w := holds(t, prefix, goldenBlob("1", name, 1)); len(w) != 0 {
				t.Fatalf("%s: dropped generation still stored at %q", name, w)
			}
			if got, _, err := b.Get(ctx, name); err != nil || !bytes.Equal(got, goldenBlob("1", name, 2)) {
				t.Fatalf("Get(%s) after DropPrevious = %q, %v", name, got, err)
			}
		}
	})
	t.Run("delete", func(t *testing.T) {
		b, prefix := loadGolden(t, "layout-v1.json")
		_, v, _ := b.Get(ctx, "s")
		if err := b.Delete(ctx, "s", v); err != nil {
			t.Fatal(err)
		}
		if w := holds(t, prefix, []byte("blob of s")); len(w) != 0 {
			t.Fatalf("deleted blob still stored at %q", w)
		}
		// Created again, it continues above its old counter.
		nv, err := b.Put(ctx, "s", []byte("again"), backends.Absent)
		if err != nil || mustCounter(t, nv) <= mustCounter(t, v) {
			t.Fatalf("Put after Delete = %q, %v (deleted %s)", nv, err, v)
		}
	})
}

// TestGoldenLayout2 opens a vault written by the layout-2 code and checks
// that DropPrevious leaves no copy of the previous generation in Redis.
func TestGoldenLayout2(t *testing.T) {
	ctx := context.Background()
	if *updateGolden {
		b, prefix := newTestBackend(t)
		for _, name := range []string{"s", backends.HeaderName} {
			v, err := b.Put(ctx, name, goldenBlob("2", name, 1), backends.Absent)
			if err == nil {
				_, err = b.Put(ctx, name, goldenBlob("2", name, 2), v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Put(ctx, "one", goldenBlob("2", "one", 1), backends.Absent); err != nil {
			t.Fatal(err)
		}
		j, err := json.MarshalIndent(dumpVault(t, prefix), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "golden", "layout-v2.json"), append(j, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("read", func(t *testing.T) {
		b, _ := loadGolden(t, "layout-v2.json")
		checkGoldenReads(t, b, "2")
		rt := &roundTrips{}
		b.client.AddHook(rt)
		if _, _, err := b.Get(ctx, "s"); err != nil || rt.n.Load() != 1 {
			t.Fatalf("Get of a layout-2 blob: %v, %d round trips, want 1", err, rt.n.Load())
		}
	})
	t.Run("drop previous", func(t *testing.T) {
		b, prefix := loadGolden(t, "layout-v2.json")
		for _, name := range []string{"s", backends.HeaderName} {
			if w := holds(t, prefix, goldenBlob("2", name, 1)); len(w) != 1 {
				t.Fatalf("%s: previous generation stored at %q, want one slot", name, w)
			}
			if err := b.DropPrevious(ctx, name); err != nil {
				t.Fatal(err)
			}
			if w := holds(t, prefix, goldenBlob("2", name, 1)); len(w) != 0 {
				t.Fatalf("%s: dropped generation still stored at %q", name, w)
			}
			if _, _, err := b.Previous(ctx, name); !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Previous(%s) after DropPrevious: %v", name, err)
			}
			got, v, err := b.Get(ctx, name)
			if err != nil || !bytes.Equal(got, goldenBlob("2", name, 2)) {
				t.Fatalf("Get(%s) after DropPrevious = %q, %v", name, got, err)
			}
			// The next Put writes the emptied slot; the blob it replaces
			// is the previous generation again.
			if _, err := b.Put(ctx, name, []byte("next"), v); err != nil {
				t.Fatal(err)
			}
			if prev, pv, err := b.Previous(ctx, name); err != nil || pv != v || !bytes.Equal(prev, goldenBlob("2", name, 2)) {
				t.Fatalf("Previous(%s) after the next Put = %q, %q, %v", name, prev, pv, err)
			}
		}
	})
}

// TestLaterLayout: a hash whose layout field names a layout this code
// does not know (written by a later version) is refused by every call,
// never replaced, not even by Put with Any; Delete with Any removes it.
func TestLaterLayout(t *testing.T) {
	b, prefix := newTestBackend(t)
	ctx := context.Background()
	c := rawClient(t, redisURL(t))
	key := "{" + prefix + "}:b:g"
	fields := []any{"layout", "3", "v", "1-0123456789abcdef", "s", "0", "d0", "x"}
	if err := c.HSet(ctx, key, fields...).Err(); err != nil {
		t.Fatal(err)
	}
	before, _ := c.HGetAll(ctx, key).Result()
	if _, _, err := b.Get(ctx, "g"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get: %v, want ErrCorrupt", err)
	}
	if _, _, err := b.Previous(ctx, "g"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Previous: %v, want ErrCorrupt", err)
	}
	for _, iv := range []backends.Version{backends.Any, backends.Absent, "1-0123456789abcdef"} {
		if _, err := b.Put(ctx, "g", []byte("new"), iv); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Put(%q): %v, want ErrCorrupt", iv, err)
		}
	}
	if _, err := b.Restore(ctx, "g", backends.Any); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Restore: %v, want ErrCorrupt", err)
	}
	if err := b.DropPrevious(ctx, "g"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DropPrevious: %v, want ErrCorrupt", err)
	}
	if after, _ := c.HGetAll(ctx, key).Result(); !maps.Equal(before, after) {
		t.Fatalf("hash changed from %q to %q", before, after)
	}
	if err := b.Delete(ctx, "g", backends.Any); err != nil {
		t.Fatalf("Delete(Any): %v", err)
	}
}
