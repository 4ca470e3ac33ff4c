package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// Script commands that reach a blob stored in a vault folder. A file of
// layout 2 is a record holding the current blob and its previous
// generation in two checksummed slots, so a bit flipped in the file is
// caught by the file backend, which reads the generation before it. These
// commands act on the blobs themselves, through the backend: FILE is
// vault/vault.hdr or vault/sessions/NAME.sealed.

// blobName returns the backend folder and the blob name of FILE.
func blobName(ts *testscript.TestScript, path string) (*file.Backend, string) {
	path = ts.MkAbs(path)
	dir, name := filepath.Dir(path), backends.HeaderName
	if filepath.Base(path) != "vault.hdr" {
		dir, name = filepath.Dir(dir), strings.TrimSuffix(filepath.Base(path), ".sealed")
	}
	b, err := file.New(dir)
	ts.Check(err)
	return b, name
}

// storedBlobs returns the current blob of FILE and its previous
// generation (nil if none).
func storedBlobs(ts *testscript.TestScript, b *file.Backend, name string) (cur, prev []byte) {
	ctx := context.Background()
	cur, _, err := b.Get(ctx, name)
	ts.Check(err)
	prev, _, err = b.Previous(ctx, name)
	if err != nil && !errors.Is(err, backends.ErrNotFound) {
		ts.Fatalf("%v", err)
	}
	return cur, prev
}

// setBlobs stores cur as the current blob of name and prev (or nothing)
// as its previous generation.
func setBlobs(ts *testscript.TestScript, b *file.Backend, name string, cur, prev []byte) {
	ctx := context.Background()
	if prev != nil {
		_, err := b.Put(ctx, name, prev, backends.Any)
		ts.Check(err)
	}
	_, err := b.Put(ctx, name, cur, backends.Any)
	ts.Check(err)
	if prev == nil {
		ts.Check(b.DropPrevious(ctx, name))
	}
}

// cmdFlipBitBlob: flipbit [-prev] FILE OFFSET flips bit 0 of byte OFFSET
// (negative: from the end) of the blob stored at FILE (with -prev, of its
// previous generation), keeping the other generation as it was. Other
// files are changed in place.
func cmdFlipBitBlob(ts *testscript.TestScript, neg bool, args []string) {
	prevToo := len(args) == 3 && args[0] == "-prev"
	if prevToo {
		args = args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbit [-prev] FILE OFFSET")
	}
	p := filepath.ToSlash(args[0])
	if !strings.HasSuffix(p, "/vault.hdr") && !strings.HasSuffix(p, ".sealed") {
		cmdFlipBit(ts, neg, args)
		return
	}
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	b, name := blobName(ts, args[0])
	defer b.Close()
	cur, prev := storedBlobs(ts, b, name)
	target := cur
	if prevToo {
		target = prev
	}
	if off < 0 {
		off += len(target)
	}
	if off < 0 || off >= len(target) {
		ts.Fatalf("flipbit: offset %s outside a blob of %d bytes", args[1], len(target))
	}
	target[off] ^= 0x01
	setBlobs(ts, b, name, cur, prev)
}

// cmdBlob: blob [-prev] FILE OUT writes the blob stored at FILE (with
// -prev, its previous generation) to OUT.
func cmdBlob(ts *testscript.TestScript, neg bool, args []string) {
	prevToo := len(args) == 3 && args[0] == "-prev"
	if prevToo {
		args = args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: blob [-prev] FILE OUT")
	}
	b, name := blobName(ts, args[0])
	defer b.Close()
	cur, prev := storedBlobs(ts, b, name)
	out := cur
	if prevToo {
		if prev == nil {
			ts.Fatalf("%s has no previous generation", args[0])
		}
		out = prev
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out, 0o600))
}

// cmdCmpBlob: cmpblob [-prev] FILE WANT compares the blob stored at FILE
// (with -prev, its previous generation) with the file WANT.
func cmdCmpBlob(ts *testscript.TestScript, neg bool, args []string) {
	prevToo := len(args) == 3 && args[0] == "-prev"
	if prevToo {
		args = args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: cmpblob [-prev] FILE WANT")
	}
	b, name := blobName(ts, args[0])
	defer b.Close()
	cur, prev := storedBlobs(ts, b, name)
	got := cur
	if prevToo {
		got = prev
	}
	want, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	if eq := bytes.Equal(got, want); eq == neg {
		ts.Fatalf("cmpblob %s %s: equal %v", strings.Join(args, " "), args[1], eq)
	}
}

// cmdSetPrev: setprev FILE IN makes the content of IN the previous
// generation of the blob stored at FILE, keeping the current blob.
func cmdSetPrev(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setprev FILE IN")
	}
	b, name := blobName(ts, args[0])
	defer b.Close()
	cur, _ := storedBlobs(ts, b, name)
	in, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	setBlobs(ts, b, name, cur, in)
}

// cmdSetCur: setcur FILE IN makes the content of IN the current blob
// stored at FILE, keeping its previous generation (or its lack of one).
func cmdSetCur(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setcur FILE IN")
	}
	b, name := blobName(ts, args[0])
	defer b.Close()
	_, prev := storedBlobs(ts, b, name)
	in, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	setBlobs(ts, b, name, in, prev)
}

// cmdNoPrev: noprev FILE passes when the blob stored at FILE has no
// previous generation (! noprev: when it has one).
func cmdNoPrev(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: noprev FILE")
	}
	b, name := blobName(ts, args[0])
	defer b.Close()
	_, prev := storedBlobs(ts, b, name)
	if (prev == nil) == neg {
		ts.Fatalf("noprev %s: previous generation present %v", args[0], prev != nil)
	}
}
