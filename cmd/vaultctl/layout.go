package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"

	"github.com/sessionvault/sessionvault/backends"
)

// This file is the one place that says which entries verify expects in a
// vault folder of the file backend (backends/file, layouts 1 and 2). A
// new layout adds its rules to vaultLayout; everything no rule matches is
// reported.

// entryKind is what a layout rule expects at a name.
type entryKind int

const (
	kindFile entryKind = iota
	kindDir
)

// contentKind is what a file holds, from its first bytes.
type contentKind int

const (
	contentUnknown contentKind = iota // not a sessionvault structure, or unreadable
	contentEmpty                      // no bytes
	contentHeader                     // a vault header: key slots wrapping the data keys
	contentSession                    // a sealed session: no key material
)

// describe says what a file of content c holds, for messages.
func (c contentKind) describe() string {
	switch c {
	case contentHeader:
		return "holds a vault header (its key slots wrap the data keys: a passphrase or key it had, retired since or not, unlocks them)"
	case contentSession:
		return "holds a sealed session"
	case contentEmpty:
		return "is empty"
	}
	return "holds data that is not a sessionvault structure (it may be plaintext)"
}

// layoutRule matches the entries of one folder of the layout.
type layoutRule struct {
	dir   string // the folder, relative to the vault folder ("" the vault folder itself)
	match func(name string) bool
	kind  entryKind
	// content is what a file matched by this rule should hold (files
	// only); a file holding anything else is reported.
	content contentKind
	// temp marks leftovers of an interrupted write: reported, and called
	// harmless only when they hold a sealed session.
	temp bool
	what string // what the entry is, for messages
}

// vaultLayout lists every entry the file backend's layouts 1 and 2 put in
// a vault folder (backends/file's package documentation). Layout 2 keeps
// the same file names (a record file holding both generations in its two
// slots) and a write lock file per name (locks/.NAME.wlock, "..vault.wlock" for
// the header); a folder still in layout 1, or moved from it, may hold the
// ".prev" files and the one write lock of layout 1.
var vaultLayout = []layoutRule{
	{dir: "", match: equals("vault.hdr"), kind: kindFile, content: contentHeader, what: "the vault header"},
	{dir: "", match: equals(".vault.hdr.prev"), kind: kindFile, content: contentHeader, what: "the previous generation of the header"},
	{dir: "", match: equals("sessions"), kind: kindDir, what: "the sessions folder"},
	{dir: "", match: equals("locks"), kind: kindDir, what: "the locks folder"},
	{dir: "", match: isTempOf(func(f string) bool { return f == "vault.hdr" }), kind: kindFile, temp: true, content: contentHeader, what: "a temp copy of the header left by an interrupted write"},
	{dir: "sessions", match: isSessionFile, kind: kindFile, content: contentSession, what: "a sealed session"},
	{dir: "sessions", match: prevOf(isSessionFile), kind: kindFile, content: contentSession, what: "the previous generation of a session"},
	{dir: "sessions", match: isTempOf(isSessionFile), kind: kindFile, temp: true, content: contentSession, what: "a temp file left by an interrupted write"},
	{dir: "locks", match: equals(".write.lock"), kind: kindFile, content: contentEmpty, what: "the write lock of layout 1"},
	{dir: "locks", match: writeLockFile, kind: kindFile, content: contentEmpty, what: "a write lock file"},
	{dir: "locks", match: lockFile, kind: kindFile, content: contentEmpty, what: "a lock file"},
}

// lookupRule returns the rule for name in folder dir, or nil.
func lookupRule(dir, name string) *layoutRule {
	for i := range vaultLayout {
		if r := &vaultLayout[i]; r.dir == dir && r.match(name) {
			return r
		}
	}
	return nil
}

func equals(s string) func(string) bool { return func(n string) bool { return n == s } }

// isSessionFile matches "NAME.sealed" for a valid session name.
func isSessionFile(n string) bool {
	name, ok := strings.CutSuffix(n, ".sealed")
	return ok && name != backends.HeaderName && backends.ValidateName(name) == nil
}

// prevOf matches "." + a name file matches + ".prev".
func prevOf(file func(string) bool) func(string) bool {
	return func(n string) bool {
		inner, ok := strings.CutPrefix(n, ".")
		if !ok {
			return false
		}
		inner, ok = strings.CutSuffix(inner, ".prev")
		return ok && file(inner)
	}
}

// isTempOf matches "." + a name file matches + ".tmp-" + 16 hex digits,
// the backend's temp files and links.
func isTempOf(file func(string) bool) func(string) bool {
	return func(n string) bool {
		inner, ok := strings.CutPrefix(n, ".")
		if !ok {
			return false
		}
		i := strings.LastIndex(inner, ".tmp-")
		if i < 0 || len(inner)-i-len(".tmp-") != 16 {
			return false
		}
		for _, c := range inner[i+len(".tmp-"):] {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return file(inner[:i])
	}
}

// lockFile matches "NAME.lock" for a valid session name.
func lockFile(n string) bool {
	name, ok := strings.CutSuffix(n, ".lock")
	return ok && backends.ValidateName(name) == nil
}

// writeLockFile matches ".NAME.wlock" for a valid session name, or
// "..vault.wlock" (the header's, backends.HeaderName): layout 2's write
// locks, one per name.
func writeLockFile(n string) bool {
	inner, ok := strings.CutPrefix(n, ".")
	if !ok {
		return false
	}
	name, ok := strings.CutSuffix(inner, ".wlock")
	return ok && (name == backends.HeaderName || backends.ValidateName(name) == nil)
}

// sniff reads the first bytes of the file at path, without following a
// symlink or blocking on a FIFO, and says what it holds.
func sniff(path string) contentKind {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow|oNonBlock, 0)
	if err != nil {
		return contentUnknown
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return contentUnknown
	}
	var b [8]byte
	n, _ := f.Read(b[:])
	if n == 0 {
		return contentEmpty
	}
	if !bytes.Equal(b[:n], []byte("SVLT-REC")) {
		return blobKind(b[:n])
	}
	// A layout-2 record (docs/FORMAT.md, section 15): two slots, each a
	// 64-byte header (the slot size at byte 12) and a blob. What it holds
	// is what its slots' blobs hold; a slot zeroed (a dropped previous
	// generation) holds nothing.
	var h [16]byte
	if n, _ := f.ReadAt(h[:], 0); n != len(h) {
		return contentUnknown
	}
	slot := int64(binary.BigEndian.Uint32(h[12:]))
	kind := contentUnknown
	for _, off := range []int64{64, slot + 64} {
		if n, _ := f.ReadAt(b[:], off); n == len(b) {
			if k := blobKind(b[:]); k != contentUnknown {
				kind = k
			}
		}
	}
	return kind
}

// blobKind says what a blob that starts with b holds.
func blobKind(b []byte) contentKind {
	switch {
	case bytes.Equal(b, []byte("SVLT-HDR")):
		return contentHeader
	case bytes.Equal(b, []byte("SVLT-SES")):
		return contentSession
	}
	return contentUnknown
}
