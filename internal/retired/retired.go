// Package retired is the retired-credential scanner of sessionvault's
// tests: it reads storage the way an attacker with a copy of it would,
// and reports every byte sequence that still opens with a credential the
// vault has retired.
//
// It walks every file under a folder (the file backend: current blobs,
// previous generations, temp files, links, strays) or every key and field
// of a Redis server, finds vault headers ("SVLT-HDR") and sealed
// envelopes ("SVLT-SES", versions 1 to 3) at any offset, and tries:
//
//   - every retired passphrase (argon2id with the slot's own parameters)
//     and every retired keychain KEK against every key slot of every
//     header found: a slot whose check value matches and whose wrapped
//     keys open is a finding;
//   - every credential still in use against every slot, and compares the
//     data keys it unwraps with the dropped generations' keys: a header
//     that still wraps a dropped key is a finding;
//   - every dropped data key against every envelope: one that opens is a
//     finding.
//
// It is written from docs/FORMAT.md alone and shares no code with package
// vault, so a bug in the vault's own parsing cannot hide a finding.
package retired

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Credentials are what the scanner tries.
type Credentials struct {
	// Passphrases and KEKs are retired: nothing stored may open with
	// them.
	Passphrases [][]byte
	KEKs        [][]byte
	// LivePassphrases and LiveKEKs are in use; the scanner opens slots
	// with them only to see which data keys a header still wraps.
	LivePassphrases [][]byte
	LiveKEKs        [][]byte
	// DroppedKeys are the data keys of dropped generations, as a test
	// learned them before the rotation (nothing stored may be sealed
	// under them or wrap them).
	DroppedKeys [][]byte
	// MaxMemoryKiB bounds the argon2id memory of a slot the scanner
	// derives (a header it finds is hostile input); zero means 64 MiB.
	MaxMemoryKiB uint32
}

// Finding is one stored byte sequence that a retired credential opens.
type Finding struct {
	Where  string // file path, or "redis KEY FIELD"
	Offset int    // of the magic within the file or field
	What   string // e.g. "header slot 1 opens with retired passphrase 0"
}

func (f Finding) String() string { return fmt.Sprintf("%s @%d: %s", f.Where, f.Offset, f.What) }

// Report is the result of a scan.
type Report struct {
	Blobs     int // files or fields read
	Headers   int // headers found (at any offset)
	Envelopes int // envelopes found (at any offset)
	Findings  []Finding
}

// Add merges r2 into r.
func (r *Report) Add(r2 Report) {
	r.Blobs += r2.Blobs
	r.Headers += r2.Headers
	r.Envelopes += r2.Envelopes
	r.Findings = append(r.Findings, r2.Findings...)
}

// Scanner scans blobs. It caches argon2id results, so one Scanner should
// be reused across the scans of one harness run.
type Scanner struct {
	c     Credentials
	cache map[string][]byte // argon2id outputs by (passphrase, salt, params)
	ids   map[[16]byte]bool // vault ids seen in headers, for envelopes
}

// New returns a Scanner for c.
func New(c Credentials) *Scanner {
	if c.MaxMemoryKiB == 0 {
		c.MaxMemoryKiB = 64 << 10
	}
	return &Scanner{c: c, cache: map[string][]byte{}, ids: map[[16]byte]bool{}}
}

// Scan looks for headers and envelopes at every offset of blob, which was
// read from where (name is the session name to try for envelopes: the
// name encoded in where). Headers are searched first, so that their vault
// ids are known for the envelopes of the same scan.
func (s *Scanner) Scan(where, name string, blob []byte) Report {
	rep := Report{Blobs: 1}
	for off := range offsets(blob, "SVLT-HDR") {
		rep.Headers++
		rep.Findings = append(rep.Findings, s.header(where, off, blob[off:])...)
	}
	for off := range offsets(blob, "SVLT-SES") {
		rep.Envelopes++
		rep.Findings = append(rep.Findings, s.envelope(where, off, blob[off:], name)...)
	}
	return rep
}

func offsets(b []byte, magic string) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(magic))
			if j < 0 {
				return
			}
			if !yield(i + j) {
				return
			}
			i += j + 1
		}
	}
}

// subkey is HKDF-SHA256 with the vault id as salt (FORMAT.md section 1).
func subkey(ikm []byte, id []byte, info string, n int) []byte {
	k, err := hkdf.Key(sha256.New, ikm, id, info, n)
	if err != nil {
		panic(err)
	}
	return k
}

type hslot struct {
	kind    byte
	id      []byte
	t, m    uint32
	p       uint8
	salt    []byte
	check   []byte
	nonce   []byte
	wrapped []byte
	aad     []byte
}

// parseHeader reads a header of version 1, 2 or 3 leniently (no
// checksum, no MAC: an attacker needs neither) and returns its vault id,
// generation count and the slots it could read. TPM slots (kind 3) are
// sized and skipped (no KEK of theirs is ever at hand); keychain slots
// that record a service (kind 4) are read as keychain slots.
func parseHeader(b []byte) (id []byte, g int, slots []hslot) {
	if len(b) < 27 {
		return nil, 0, nil
	}
	if v := binary.BigEndian.Uint16(b[8:]); v < 1 || v > 3 {
		return nil, 0, nil
	}
	id = b[10:26]
	g = int(b[26])
	pre := 27 + 4*g
	if g == 0 || len(b) < pre+1 {
		return nil, 0, nil
	}
	n := int(b[pre])
	off := pre + 1
	for range n {
		start := off
		if off+17 > len(b) {
			break
		}
		s := hslot{kind: b[off], id: b[off+1 : off+17]}
		off += 17
		tpm := false
		switch s.kind {
		case 1:
			if off+25 > len(b) {
				return id, g, slots
			}
			s.t = binary.BigEndian.Uint32(b[off:])
			s.m = binary.BigEndian.Uint32(b[off+4:])
			s.p = b[off+8]
			s.salt = b[off+9 : off+25]
			off += 25
		case 2:
		case 3: // TPM: u16 length, sealed key
			if off+2 > len(b) {
				return id, g, slots
			}
			off += 2 + int(binary.BigEndian.Uint16(b[off:]))
			tpm = true
		case 4: // keychain with service: u8 length, name
			if off+1 > len(b) {
				return id, g, slots
			}
			off += 1 + int(b[off])
			s.kind = 2
		default:
			return id, g, slots // a kind this scanner cannot size
		}
		wl := 32*g + 16
		if off+16+24+wl > len(b) {
			return id, g, slots
		}
		s.check = b[off : off+16]
		off += 16
		// AAD_slot carries version 1 whatever the header's version
		// (docs/FORMAT.md sections 3.3 and 3.4).
		s.aad = append(append([]byte(nil), b[:pre]...), b[start:off]...)
		binary.BigEndian.PutUint16(s.aad[8:], 1)
		s.nonce = b[off : off+24]
		s.wrapped = b[off+24 : off+24+wl]
		off += 24 + wl
		if !tpm {
			slots = append(slots, s)
		}
	}
	return id, g, slots
}

// unwrap opens slot s with kek, or returns nil.
func unwrap(id []byte, s *hslot, kek []byte) [][]byte {
	c := subkey(kek, id, "sessionvault v1 slot check"+string(s.id), 16)
	if subtle.ConstantTimeCompare(c, s.check) != 1 {
		return nil
	}
	aead, err := chacha20poly1305.NewX(subkey(kek, id, "sessionvault v1 slot wrap"+string(s.id), 32))
	if err != nil {
		return nil
	}
	plain, err := aead.Open(nil, s.nonce, s.wrapped, s.aad)
	if err != nil {
		return nil
	}
	var keys [][]byte
	for i := 0; i+32 <= len(plain); i += 32 {
		keys = append(keys, plain[i:i+32])
	}
	return keys
}

func (s *Scanner) derive(pass []byte, sl *hslot) []byte {
	if sl.t == 0 || sl.t > 10 || sl.p == 0 || sl.m < 8*uint32(sl.p) || sl.m > s.c.MaxMemoryKiB {
		return nil // out of any sane policy: not derived
	}
	key := fmt.Sprintf("%x|%x|%d|%d|%d", pass, sl.salt, sl.t, sl.m, sl.p)
	if k, ok := s.cache[key]; ok {
		return k
	}
	k := argon2.IDKey(pass, sl.salt, sl.t, sl.m, sl.p, 32)
	s.cache[key] = k
	return k
}

func (s *Scanner) header(where string, off int, b []byte) []Finding {
	id, _, slots := parseHeader(b)
	if id == nil {
		return nil
	}
	var vid [16]byte
	copy(vid[:], id)
	s.ids[vid] = true
	var out []Finding
	add := func(what string, args ...any) {
		out = append(out, Finding{Where: where, Offset: off, What: fmt.Sprintf(what, args...)})
	}
	for i := range slots {
		sl := &slots[i]
		// Every KEK this slot may be under, retired or live.
		type cand struct {
			kek     []byte
			retired string // "" for a live credential
		}
		var cands []cand
		switch sl.kind {
		case 1:
			for j, p := range s.c.Passphrases {
				cands = append(cands, cand{s.derive(p, sl), fmt.Sprintf("retired passphrase %d", j)})
			}
			for _, p := range s.c.LivePassphrases {
				cands = append(cands, cand{s.derive(p, sl), ""})
			}
		case 2:
			for j, k := range s.c.KEKs {
				cands = append(cands, cand{k, fmt.Sprintf("retired keychain key %d", j)})
			}
			for _, k := range s.c.LiveKEKs {
				cands = append(cands, cand{k, ""})
			}
		}
		for _, c := range cands {
			if c.kek == nil {
				continue
			}
			keys := unwrap(id, sl, c.kek)
			if keys == nil {
				continue
			}
			if c.retired != "" {
				add("header slot %d (kind %d) opens with %s", i, sl.kind, c.retired)
			}
			for _, k := range keys {
				for j, d := range s.c.DroppedKeys {
					if bytes.Equal(k, d) {
						add("header slot %d wraps dropped data key %d", i, j)
					}
				}
			}
		}
	}
	return out
}

func (s *Scanner) envelope(where string, off int, b []byte, name string) []Finding {
	if len(b) < 10 || len(s.c.DroppedKeys) == 0 {
		return nil
	}
	hl := 0
	ver := binary.BigEndian.Uint16(b[8:])
	switch ver {
	case 1:
		hl = 38 // magic, version, generation, nonce
	case 2:
		hl = 46 // magic, version, generation, counter, nonce
	case 3:
		hl = 38 // magic, version, generation, counter, nonce prefix
	default:
		return nil
	}
	if len(b) < hl+16 || len(name) > 255 {
		return nil
	}
	hdr := b[:hl]
	type try struct{ nonce, ct []byte }
	tries := []try{{b[hl-24 : hl], b[hl:]}}
	if ver == 3 {
		// FORMAT.md 4.4: chunks of 65,536 bytes of plaintext, nonce
		// prefix || u32 index || u32 last. The first chunk alone
		// releases plaintext, so it is the one tried: as a full chunk
		// followed by others, and as the only chunk.
		const full = 65536 + 16
		first := append(append([]byte(nil), b[22:38]...), 0, 0, 0, 0, 0, 0, 0, 0)
		only := append(append([]byte(nil), first[:23]...), 1)
		ct := b[hl:]
		tries = []try{{only, ct[:min(full, len(ct))]}}
		if len(ct) > full {
			tries = append(tries, try{first, ct[:full]})
		}
	}
	var out []Finding
	for vid := range s.ids {
		aad := append(append(append(append([]byte(nil), hdr...), vid[:]...), byte(len(name))), name...)
		for j, dk := range s.c.DroppedKeys {
			aead, err := chacha20poly1305.NewX(subkey(dk, vid[:], "sessionvault v1 session seal", 32))
			if err != nil {
				continue
			}
			for _, tr := range tries {
				if _, err := aead.Open(nil, tr.nonce, tr.ct, aad); err == nil {
					out = append(out, Finding{Where: where, Offset: off, What: fmt.Sprintf("envelope %q opens with dropped data key %d", name, j)})
				}
			}
		}
	}
	return out
}

// NameOfFile returns the session name a file of the file backend holds
// ("sessions/NAME.sealed", ".NAME.sealed.prev", ".NAME.sealed.tmp-X"), or
// "" for the header and anything else.
func NameOfFile(path string) string {
	base := strings.TrimPrefix(filepath.Base(path), ".")
	if i := strings.LastIndex(base, ".sealed"); i > 0 {
		return base[:i]
	}
	return ""
}

// ScanDir scans every regular file under dir (the whole vault folder:
// temp files, links, previous generations, strays). Headers are scanned
// before sessions so that their vault ids are known.
func (s *Scanner) ScanDir(dir string) (Report, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	blobs := make([][]byte, len(files))
	for i, p := range files {
		if blobs[i], err = os.ReadFile(p); err != nil {
			return Report{}, err
		}
		for off := range offsets(blobs[i], "SVLT-HDR") {
			if id, _, _ := parseHeader(blobs[i][off:]); id != nil {
				var vid [16]byte
				copy(vid[:], id)
				s.ids[vid] = true
			}
		}
	}
	var rep Report
	for i, p := range files {
		rep.Add(s.Scan(p, NameOfFile(p), blobs[i]))
	}
	return rep, nil
}

// Redis is what ScanRedis needs of a client: go-redis's UniversalClient
// satisfies it through the adapter in the tests (a SCAN of the keyspace,
// and every value of a key whatever its type).
type Redis interface {
	Keys(ctx context.Context) ([]string, error)
	Values(ctx context.Context, key string) (map[string][]byte, error) // field (or "" for a string) -> value
}

// ScanRedis scans every key of the server and every field of every hash
// (and every string, set member and list element). nameOf gives the
// session name a key holds.
func (s *Scanner) ScanRedis(ctx context.Context, r Redis, nameOf func(key string) string) (Report, error) {
	keys, err := r.Keys(ctx)
	if err != nil {
		return Report{}, err
	}
	type val struct {
		where, name string
		b           []byte
	}
	var vals []val
	for _, k := range keys {
		fields, err := r.Values(ctx, k)
		if err != nil {
			return Report{}, err
		}
		for f, b := range fields {
			vals = append(vals, val{"redis " + k + " " + f, nameOf(k), b})
			for off := range offsets(b, "SVLT-HDR") {
				if id, _, _ := parseHeader(b[off:]); id != nil {
					var vid [16]byte
					copy(vid[:], id)
					s.ids[vid] = true
				}
			}
		}
	}
	var rep Report
	for _, v := range vals {
		rep.Add(s.Scan(v.where, v.name, v.b))
	}
	return rep, nil
}

// HeaderKeys returns the data keys that header blob wraps, opened with
// the passphrase pass (a test learns a generation's key this way before a
// rotation drops it), or nil if no passphrase slot opens with it.
func HeaderKeys(blob, pass []byte) [][]byte {
	id, _, slots := parseHeader(blob)
	s := New(Credentials{})
	for i := range slots {
		if slots[i].kind != 1 {
			continue
		}
		if kek := s.derive(pass, &slots[i]); kek != nil {
			if keys := unwrap(id, &slots[i], kek); keys != nil {
				return keys
			}
		}
	}
	return nil
}
