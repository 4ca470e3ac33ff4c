package main

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sessionvault/sessionvault/kdf"
)

// cmdForgeKDF is the testscript command "forgekdf HEADER T MEMORY_KIB P":
// it sets every passphrase slot of the header stored at HEADER (the
// file backend's blob, blob_cmds_test.go) to those argon2id
// parameters and recomputes the checksum, as an attacker who can write
// the header would (docs/FORMAT.md gives the layout).
func cmdForgeKDF(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: forgekdf HEADER T MEMORY_KIB P")
	}
	var v [3]uint64
	for i, a := range args[1:] {
		n, err := strconv.ParseUint(a, 10, 32)
		ts.Check(err)
		v[i] = n
	}
	// The header blob the file backend stores (blob_cmds_test.go), its
	// previous generation kept.
	fb, name := blobName(ts, args[0])
	defer fb.Close()
	b, prev := storedBlobs(ts, fb, name)
	n, problem := forgeKDF(b, kdf.Params{Time: uint32(v[0]), MemoryKiB: uint32(v[1]), Threads: uint8(v[2])})
	if problem != "" {
		ts.Fatalf("forgekdf: %s", problem)
	}
	ts.Logf("forgekdf: %d passphrase slots set", n)
	setBlobs(ts, fb, name, b, prev)
}

// forgeKDF edits header b in place; it returns how many slots it changed.
func forgeKDF(b []byte, p kdf.Params) (int, string) {
	const fixed = 8 + 2 + 16 // magic, version, vault id
	if len(b) < fixed+1 {
		return 0, "short header"
	}
	ng := int(b[fixed])
	off := fixed + 1 + 4*ng
	if off >= len(b) {
		return 0, "short header"
	}
	ns := int(b[off])
	off++
	changed := 0
	for range ns {
		if off+1+16 > len(b) {
			return 0, "short header"
		}
		kind := b[off]
		off += 1 + 16 // kind, slot id
		if kind == 1 {
			if off+25 > len(b) {
				return 0, "short header"
			}
			binary.BigEndian.PutUint32(b[off:], p.Time)
			binary.BigEndian.PutUint32(b[off+4:], p.MemoryKiB)
			b[off+8] = p.Threads
			off += 4 + 4 + 1 + 16 // time, memory, threads, salt
			changed++
		}
		off += 16 + 24 + ng*32 + 16 // check, nonce, wrapped keys and tag
	}
	if off+64 != len(b) {
		return 0, "unexpected header size"
	}
	sum := sha256.Sum256(b[:len(b)-32])
	copy(b[len(b)-32:], sum[:])
	return changed, ""
}

// TestParseKDFCost: the --allow-kdf-cost syntax, and that formatKDFCost
// writes what it reads.
func TestParseKDFCost(t *testing.T) {
	d := kdf.Default.Work()
	for in, want := range map[string]kdf.Budget{
		"1GiB,54x":   {Work: 54 * d, MemoryKiB: 1 << 20},
		"16x":        {Work: 16 * d},
		"512MiB":     {MemoryKiB: 512 << 10},
		"4x, 300MiB": {Work: 4 * d, MemoryKiB: 300 << 10},
		"9000KiB":    {MemoryKiB: 9000},
	} {
		got, err := parseKDFCost(in)
		if err != nil || got != want {
			t.Errorf("parseKDFCost(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0x", "1.5x", "x", "1GB", "1GiB,2GiB", "4x,5x", "1,2,3", "-1MiB", "99999999999GiB"} {
		if b, err := parseKDFCost(in); err == nil {
			t.Errorf("parseKDFCost(%q) = %+v, want an error", in, b)
		}
	}
	for _, b := range []kdf.Budget{kdf.DefaultBudget, {Work: 54 * d, MemoryKiB: 1 << 20}, {Work: 1, MemoryKiB: 1000}} {
		s := formatKDFCost(b)
		got, err := parseKDFCost(s)
		if err != nil || got.MemoryKiB != b.MemoryKiB || got.Work < b.Work {
			t.Errorf("formatKDFCost(%+v) = %q, read back as %+v, %v", b, s, got, err)
		}
	}
}
