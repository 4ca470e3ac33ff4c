package secretstore

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
)

func TestRecordRoundTrip(t *testing.T) {
	key := []byte{0, 1, 2, 0xff, 0}
	got, err := decodeKey(encodeKey(key))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("key round trip = %x, %v", got, err)
	}
	v, err := newVersion()
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range [][]byte{{}, {0}, bytes.Repeat([]byte{0, 0xff}, 100)} {
		ver, b, err := decodeBlob(encodeBlob(v, blob), 1000)
		if err != nil || !bytes.Equal(b, blob) || len(ver) != 2*versionLen {
			t.Fatalf("blob round trip = %q %x, %v", ver, b, err)
		}
	}
	names := []string{"a", "b.c", "z@x"}
	got2, err := decodeIndex(encodeIndex(names))
	if err != nil || !slices.Equal(got2, names) {
		t.Fatalf("index round trip = %q, %v", got2, err)
	}
}

func TestRecordRefusals(t *testing.T) {
	bad := map[string]func() error{
		"key: empty":           func() error { _, err := decodeKey(nil); return err },
		"key: magic only":      func() error { _, err := decodeKey([]byte("svK1")); return err },
		"key: wrong magic":     func() error { _, err := decodeKey([]byte("svB1key")); return err },
		"key: too long":        func() error { _, err := decodeKey(append([]byte("svK1"), make([]byte, MaxKeyLen+1)...)); return err },
		"blob: short":          func() error { _, _, err := decodeBlob([]byte("svB1short"), 100); return err },
		"blob: wrong magic":    func() error { _, _, err := decodeBlob(make([]byte, 40), 100); return err },
		"blob: over max":       func() error { _, _, err := decodeBlob(append([]byte("svB1"), make([]byte, 16+11)...), 10); return err },
		"index: wrong magic":   func() error { _, err := decodeIndex([]byte("svK1a\n")); return err },
		"index: truncated":     func() error { _, err := decodeIndex([]byte("svI1a\nb")); return err },
		"index: bad name":      func() error { _, err := decodeIndex([]byte("svI1../x\n")); return err },
		"index: empty name":    func() error { _, err := decodeIndex([]byte("svI1a\n\n")); return err },
		"index: header name":   func() error { _, err := decodeIndex([]byte("svI1" + backends.HeaderName + "\n")); return err },
		"index: unsorted":      func() error { _, err := decodeIndex([]byte("svI1b\na\n")); return err },
		"index: duplicate":     func() error { _, err := decodeIndex([]byte("svI1a\na\n")); return err },
		"index: control chars": func() error { _, err := decodeIndex([]byte("svI1a\x1b[2J\n")); return err },
	}
	for name, f := range bad {
		err := f()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x00\x1b\n") {
			t.Errorf("%s: error %q carries raw bytes of the entry", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	v := [versionLen]byte{1, 2, 3}
	f.Add(encodeKey(make([]byte, 32)))
	f.Add(encodeBlob(v, []byte("sealed blob\x00")))
	f.Add(encodeIndex([]string{"a", "session-1", "z"}))
	f.Add([]byte("svI1a\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		if key, err := decodeKey(rec); err == nil {
			if len(key) == 0 || len(key) > MaxKeyLen || !bytes.Equal(encodeKey(key), rec) {
				t.Fatalf("decodeKey accepted %x as %x", rec, key)
			}
		}
		if ver, blob, err := decodeBlob(rec, 1<<16); err == nil {
			if len(ver) != 2*versionLen || !bytes.HasSuffix(rec, blob) {
				t.Fatalf("decodeBlob accepted %x as %q %x", rec, ver, blob)
			}
		}
		if names, err := decodeIndex(rec); err == nil {
			if !slices.IsSorted(names) || !bytes.Equal(encodeIndex(names), rec) && len(names) > 0 {
				t.Fatalf("decodeIndex accepted %x as %q", rec, names)
			}
			for _, n := range names {
				if backends.ValidateName(n) != nil || n == backends.HeaderName {
					t.Fatalf("decodeIndex accepted the name %q", n)
				}
			}
		}
	})
}
