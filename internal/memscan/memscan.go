// Package memscan counts the copies of a secret marker that remain in the
// memory of the current process, so that a test can measure what "secrets
// are wiped after cleanup" really leaves behind.
//
// A test makes a random Marker, hands its plain bytes to the code under test
// (as a token, a cookie, a passphrase), wipes its own copy, runs the cleanup
// it wants to check, and calls Scan. Scan reads every resident, readable
// mapping of the process (/proc/self/smaps, then /proc/self/mem) and counts
// the places where the marker appears.
//
// The test itself must not be one of those places. A Marker never holds its
// plain bytes: it keeps them XOR-masked with a random pad, and Scan compares
// memory with the marker chunk by chunk as (memory XOR pad) == masked, so
// the only plain copies are the ones the test asked for with Plain (and
// wiped) and the ones the code under test made. The scan's read buffer is
// mapped outside the Go heap, skipped by the scan and zeroed after each
// chunk.
//
// Scan works on Linux only; elsewhere it returns ErrUnsupported.
package memscan

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// ErrUnsupported is returned by Scan where /proc/self/mem is unavailable.
var ErrUnsupported = errors.New("memscan: scanning process memory is not supported on this platform")

// alphabet is the marker's character set: letters and digits survive JSON,
// HTTP headers, cookies and command lines unescaped, so a copy made by any
// of them is still a byte-for-byte copy.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// MinLen is the shortest marker: with 62 symbols, 24 characters give 142
// bits, so a chance match anywhere in gigabytes of memory is impossible.
const MinLen = 24

// Encoding is a form in which a copy of the marker is searched for.
type Encoding int

const (
	// Plain is the marker's own bytes.
	Plain Encoding = iota
	// Base64 is the standard base64 encoding of the marker, at any of the
	// three byte alignments it can have inside a longer encoded value
	// (as 99designs/keyring's file backend and JWT-like formats store it).
	Base64
	// Hex is the marker in lowercase or uppercase hexadecimal (what %x
	// and %X print for a byte slice).
	Hex
)

func (e Encoding) String() string {
	switch e {
	case Plain:
		return "plain"
	case Base64:
		return "base64"
	case Hex:
		return "hex"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// pattern is one byte string searched for, kept masked.
type pattern struct {
	enc    Encoding
	masked []byte
	pad    []byte
}

// Marker is a random secret made for one test. It holds no plain copy of
// itself.
type Marker struct {
	n        int
	patterns []pattern
}

// NewMarker returns a random marker of n characters (at least MinLen) from
// [A-Za-z0-9]. It panics if n < MinLen or the system's random source fails.
func NewMarker(n int) *Marker {
	if n < MinLen {
		panic("memscan: marker too short")
	}
	pad := make([]byte, n)
	masked := make([]byte, n)
	rnd := make([]byte, n)
	if _, err := rand.Read(pad); err != nil {
		panic(err)
	}
	for i := range masked {
		// Rejection sampling keeps the characters uniform.
		for {
			if _, err := rand.Read(rnd[i : i+1]); err != nil {
				panic(err)
			}
			if int(rnd[i]) < 256/len(alphabet)*len(alphabet) {
				break
			}
		}
		masked[i] = alphabet[int(rnd[i])%len(alphabet)] ^ pad[i]
		rnd[i] = 0
	}
	m := &Marker{n: n}
	m.patterns = append(m.patterns, pattern{enc: Plain, masked: masked, pad: pad})
	m.addBase64()
	m.addHex()
	return m
}

// addHex adds the lowercase and uppercase hex patterns.
func (m *Marker) addHex() {
	plain := m.Plain()
	defer wipe(plain)
	for _, digits := range []string{"0123456789abcdef", "0123456789ABCDEF"} {
		p := pattern{enc: Hex, masked: make([]byte, 2*m.n), pad: make([]byte, 2*m.n)}
		if _, err := rand.Read(p.pad); err != nil {
			panic(err)
		}
		for i, c := range plain {
			p.masked[2*i] = digits[c>>4] ^ p.pad[2*i]
			p.masked[2*i+1] = digits[c&15] ^ p.pad[2*i+1]
		}
		m.patterns = append(m.patterns, p)
	}
}

// addBase64 adds the three base64 patterns. Inside a longer value the
// marker may start at byte 0, 1 or 2 of a 3-byte group; for each alignment
// only the output characters whose 6 bits all come from the marker are
// fixed, and those are the pattern.
func (m *Marker) addBase64() {
	for align := 0; align < 3; align++ {
		buf := make([]byte, align+m.n+2)
		m.reveal(buf[align : align+m.n])
		enc := make([]byte, base64.StdEncoding.EncodedLen(len(buf)))
		base64.StdEncoding.Encode(enc, buf)
		wipe(buf)
		first := (8*align + 5) / 6    // first char whose bits start at or after the marker
		last := (8*(align+m.n))/6 - 1 // last char whose bits end within the marker
		p := pattern{enc: Base64, masked: make([]byte, last-first+1), pad: make([]byte, last-first+1)}
		if _, err := rand.Read(p.pad); err != nil {
			panic(err)
		}
		for i := range p.masked {
			p.masked[i] = enc[first+i] ^ p.pad[i]
		}
		wipe(enc)
		m.patterns = append(m.patterns, p)
	}
}

// Export returns the marker in masked form (its pad and masked bytes, in
// hex), to hand to a child process that rebuilds it with ParseMarker. The
// string holds no plain copy of the marker.
func (m *Marker) Export() string {
	p := m.patterns[0]
	return hex.EncodeToString(p.pad) + ":" + hex.EncodeToString(p.masked)
}

// ParseMarker rebuilds a marker from Export's form. The rebuilt marker is
// masked with the same pad, so it matches exactly the same bytes.
func ParseMarker(s string) (*Marker, error) {
	ps, ms, ok := strings.Cut(s, ":")
	pad, err1 := hex.DecodeString(ps)
	masked, err2 := hex.DecodeString(ms)
	if !ok || err1 != nil || err2 != nil || len(pad) != len(masked) || len(pad) < MinLen {
		return nil, errors.New("memscan: malformed exported marker")
	}
	m := &Marker{n: len(pad)}
	m.patterns = append(m.patterns, pattern{enc: Plain, masked: masked, pad: pad})
	m.addBase64()
	m.addHex()
	return m, nil
}

// Len is the marker's length in bytes.
func (m *Marker) Len() int { return m.n }

// reveal writes the plain marker into dst (len(dst) == m.n).
func (m *Marker) reveal(dst []byte) {
	p := m.patterns[0]
	for i := range dst {
		dst[i] = p.masked[i] ^ p.pad[i]
	}
}

// Plain returns a new slice holding the marker. The caller hands it to the
// code under test and must Wipe it afterwards; every plain copy left in
// memory counts against the code under test.
func (m *Marker) Plain() []byte {
	b := make([]byte, m.n)
	m.reveal(b)
	return b
}

// AppendPlain appends the marker to dst, for building an input (a JSON
// document, an HTTP header) around it. The caller wipes the result.
func (m *Marker) AppendPlain(dst []byte) []byte {
	start := len(dst)
	for range m.n {
		dst = append(dst, 0)
	}
	m.reveal(dst[start:])
	return dst
}

// Matches reports whether b contains the marker in plain form. It
// compares through the mask and makes no plain copy, so output channels
// (a log line, an error string) can be checked with it.
func (m *Marker) Matches(b []byte) bool {
	return m.count(b, Plain) > 0
}

// MatchesAny reports whether b contains the marker in any Encoding.
func (m *Marker) MatchesAny(b []byte) bool {
	return m.count(b, Plain)+m.count(b, Base64)+m.count(b, Hex) > 0
}

// count counts the occurrences of the marker in the form enc in b.
func (m *Marker) count(b []byte, enc Encoding) int {
	n := 0
	for _, p := range m.patterns {
		if p.enc == enc {
			n += p.count(b)
		}
	}
	return n
}

// count compares through the mask: only the first byte of the pattern is
// ever unmasked, in a register.
func (p *pattern) count(b []byte) int {
	n := 0
	first := p.masked[0] ^ p.pad[0]
	for i := 0; i+len(p.masked) <= len(b); {
		j := indexByte(b[i:len(b)-len(p.masked)+1], first)
		if j < 0 {
			break
		}
		i += j
		if p.matchAt(b[i:]) {
			n++
			i += len(p.masked)
		} else {
			i++
		}
	}
	return n
}

func (p *pattern) matchAt(b []byte) bool {
	for k := 1; k < len(p.masked); k++ {
		if b[k]^p.pad[k] != p.masked[k] {
			return false
		}
	}
	return true
}

// Wipe zeroes b (a plain copy returned by Plain or AppendPlain).
func Wipe(b []byte) { wipe(b) }

func wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// Hit is one copy found by Scan.
type Hit struct {
	Encoding Encoding
	Addr     uintptr
	// Region describes the mapping: its permissions and path, or "[anon]".
	Region string
}

// Result is what Scan found.
type Result struct {
	// Hits lists every copy found, in address order per encoding.
	Hits []Hit
	// Scanned is the number of bytes read.
	Scanned int64
	// Regions is the number of mappings read; Skipped those left out
	// (not readable, not resident, or special like [vvar]).
	Regions, Skipped int
	// Unrecorded counts the copies found beyond the first 4,096, which
	// Hits leaves out (Count does not see them; a scan that finds that
	// many has failed anyway).
	Unrecorded int
}

// Count is the number of copies found in encoding enc.
func (r Result) Count(enc Encoding) int {
	n := 0
	for _, h := range r.Hits {
		if h.Encoding == enc {
			n++
		}
	}
	return n
}

// String summarizes the result without any marker bytes.
func (r Result) String() string {
	s := fmt.Sprintf("plain=%d base64=%d hex=%d (scanned %d MiB in %d regions, %d skipped)",
		r.Count(Plain), r.Count(Base64), r.Count(Hex), r.Scanned>>20, r.Regions, r.Skipped)
	for _, h := range r.Hits {
		s += fmt.Sprintf("\n  %s at %#x in %s", h.Encoding, h.Addr, h.Region)
	}
	return s
}

// Scan runs a garbage collection and then searches the whole memory of the
// process for m. It returns ErrUnsupported where that is impossible.
//
// Between the collection and the end of the read it allocates nothing on
// the Go heap, so a buffer that was freed without being wiped is still
// there to be found: a copy the collector reclaimed is not a copy wiped.
func Scan(m *Marker) (Result, error) {
	rs, err := ScanAll(m)
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// ScanAll is Scan for several markers in one read of the memory: one
// Result per marker, in order.
func ScanAll(ms ...*Marker) ([]Result, error) {
	return scan(ms, func() {
		runtime.GC()
		runtime.GC()
	})
}

// ScanUncollected searches the process's memory for m without collecting
// garbage first: a buffer that was dropped without being wiped is still
// there (the collector, once it runs, may reuse or clear it), so a zero
// from ScanUncollected shows that the copies were wiped, not merely
// unreachable, provided no collection ran since they were dropped (see
// runtime/debug.SetGCPercent). Copies the Go runtime makes on its own
// (strings, grown slices) are found too.
func ScanUncollected(m *Marker) (Result, error) {
	rs, err := ScanAllUncollected(m)
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// ScanAllUncollected is ScanUncollected for several markers in one read.
func ScanAllUncollected(ms ...*Marker) ([]Result, error) {
	return scan(ms, func() {})
}
