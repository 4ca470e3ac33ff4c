package secretstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
)

// Entry formats. Every value this package writes starts with a 4-byte
// magic that says what it is, so that an entry written by another program
// under the same account is refused instead of being taken for a key or a
// blob.
//
//	key entry:   "svK1" || key                       (1..MaxKeyLen bytes of key)
//	blob entry:  "svB1" || version (16 bytes) || blob
//	index entry: "svI1" || name "\n" name "\n" ...   (sorted, each a valid name)
var (
	keyMagic   = []byte("svK1")
	blobMagic  = []byte("svB1")
	indexMagic = []byte("svI1")
)

// ErrMalformed reports an entry that this package did not write: wrong
// magic, wrong length, an invalid name in an index. The keychain holds
// something else under one of our accounts; nothing is changed.
var ErrMalformed = errors.New("secretstore: malformed entry")

// malformed returns an error matching ErrMalformed that says what is wrong
// without quoting the entry's bytes (they may be someone's secret).
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// encodeKey returns the key entry for key, in a new slice.
func encodeKey(key []byte) []byte {
	rec := make([]byte, 0, len(keyMagic)+len(key))
	rec = append(rec, keyMagic...)
	return append(rec, key...)
}

// decodeKey returns the key inside rec, in a new slice.
func decodeKey(rec []byte) ([]byte, error) {
	if !bytes.HasPrefix(rec, keyMagic) {
		return nil, malformed("not a sessionvault key entry (%d bytes, bad magic)", len(rec))
	}
	key := rec[len(keyMagic):]
	if len(key) == 0 || len(key) > MaxKeyLen {
		return nil, malformed("key entry holds %d bytes, want 1 to %d", len(key), MaxKeyLen)
	}
	return bytes.Clone(key), nil
}

// newVersion returns a fresh random blob version.
func newVersion() ([versionLen]byte, error) {
	var v [versionLen]byte
	if _, err := rand.Read(v[:]); err != nil {
		return v, err
	}
	return v, nil
}

// encodeBlob returns the blob entry for version v and blob, in a new slice.
func encodeBlob(v [versionLen]byte, blob []byte) []byte {
	rec := make([]byte, 0, recordHeaderLen+len(blob))
	rec = append(rec, blobMagic...)
	rec = append(rec, v[:]...)
	return append(rec, blob...)
}

// decodeBlob returns the version of a blob entry and the blob, in a new
// slice. maxBlob bounds the blob.
func decodeBlob(rec []byte, maxBlob int) (backends.Version, []byte, error) {
	if len(rec) < recordHeaderLen || !bytes.HasPrefix(rec, blobMagic) {
		return "", nil, malformed("not a sessionvault blob entry (%d bytes)", len(rec))
	}
	blob := rec[recordHeaderLen:]
	if len(blob) > maxBlob {
		return "", nil, malformed("blob entry holds %d bytes, more than the %d this keychain stores", len(blob), maxBlob)
	}
	v := backends.Version(hex.EncodeToString(rec[len(blobMagic):recordHeaderLen]))
	return v, bytes.Clone(blob), nil
}

// blobVersion returns the version of a blob entry without copying the blob.
func blobVersion(rec []byte) (backends.Version, error) {
	if len(rec) < recordHeaderLen || !bytes.HasPrefix(rec, blobMagic) {
		return "", malformed("not a sessionvault blob entry (%d bytes)", len(rec))
	}
	return backends.Version(hex.EncodeToString(rec[len(blobMagic):recordHeaderLen])), nil
}

// encodeIndex returns the index entry listing names (sorted, no
// duplicates).
func encodeIndex(names []string) []byte {
	rec := append([]byte(nil), indexMagic...)
	for _, n := range names {
		rec = append(rec, n...)
		rec = append(rec, '\n')
	}
	return rec
}

// decodeIndex parses an index entry. Every name must be valid, other than
// HeaderName, and appear once, in order.
func decodeIndex(rec []byte) ([]string, error) {
	if !bytes.HasPrefix(rec, indexMagic) {
		return nil, malformed("not a sessionvault index entry (%d bytes, bad magic)", len(rec))
	}
	body := rec[len(indexMagic):]
	if len(body) == 0 {
		return nil, nil
	}
	if body[len(body)-1] != '\n' {
		return nil, malformed("index entry is truncated")
	}
	lines := bytes.Split(body[:len(body)-1], []byte{'\n'})
	names := make([]string, 0, len(lines))
	for i, l := range lines {
		n := string(l)
		if n == backends.HeaderName || backends.ValidateName(n) != nil {
			return nil, malformed("index entry holds an invalid name at line %d", i+1)
		}
		if i > 0 && n <= names[i-1] {
			return nil, malformed("index entry is not sorted or has duplicates at line %d", i+1)
		}
		names = append(names, n)
	}
	return names, nil
}

// indexAdd returns names with name added, sorted, and whether it was new.
func indexAdd(names []string, name string) ([]string, bool) {
	i, found := slices.BinarySearch(names, name)
	if found {
		return names, false
	}
	return slices.Insert(names, i, name), true
}

// indexRemove returns names without name, and whether it was there.
func indexRemove(names []string, name string) ([]string, bool) {
	i, found := slices.BinarySearch(names, name)
	if !found {
		return names, false
	}
	return slices.Delete(names, i, i+1), true
}

// wipe zeroes b.
func wipe(b []byte) { secmem.Wipe(b) }
