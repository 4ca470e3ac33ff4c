//go:build linux

package memscan

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// chunkSize is how much of a mapping is read at once: large enough that
// the syscalls are few, small enough to stay out of the way of the heap.
const chunkSize = 4 << 20

// region is one mapping from /proc/self/smaps.
type region struct {
	start, end uintptr
	perms      string
	path       string
	rssKB      int64
	swapKB     int64
}

func (r region) String() string {
	p := r.path
	if p == "" {
		p = "[anon]"
	}
	return r.perms + " " + p
}

// readSmaps parses /proc/self/smaps.
func readSmaps() ([]region, error) {
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("memscan: %w", err)
	}
	var regs []region
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if r, ok := parseHeader(fields); ok {
			regs = append(regs, r)
			continue
		}
		if len(regs) == 0 {
			continue
		}
		cur := &regs[len(regs)-1]
		switch fields[0] {
		case "Rss:":
			cur.rssKB, _ = strconv.ParseInt(fields[1], 10, 64)
		case "Swap:":
			cur.swapKB, _ = strconv.ParseInt(fields[1], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("memscan: /proc/self/smaps: %w", err)
	}
	return regs, nil
}

// parseHeader parses "start-end perms offset dev inode [path]".
func parseHeader(f []string) (region, bool) {
	if len(f) < 5 || strings.HasSuffix(f[0], ":") {
		return region{}, false
	}
	s, e, ok := strings.Cut(f[0], "-")
	if !ok {
		return region{}, false
	}
	start, err1 := strconv.ParseUint(s, 16, 64)
	end, err2 := strconv.ParseUint(e, 16, 64)
	if err1 != nil || err2 != nil || len(f[1]) != 4 {
		return region{}, false
	}
	r := region{start: uintptr(start), end: uintptr(end), perms: f[1]}
	if len(f) > 5 {
		r.path = strings.Join(f[5:], " ")
	}
	return r, true
}

func scan(ms []*Marker, gc func()) ([]Result, error) {
	// Everything the scan needs is allocated before gc runs: an
	// allocation after it could reuse a freed, unwiped buffer and
	// overwrite the very copy the scan is looking for.
	maxPat := 0
	for _, m := range ms {
		for _, p := range m.patterns {
			maxPat = max(maxPat, len(p.masked))
		}
	}
	buf, err := unix.Mmap(-1, 0, chunkSize+maxPat, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("memscan: mmap: %w", err)
	}
	defer unix.Munmap(buf)
	bufStart := uintptr(unsafe.Pointer(&buf[0]))
	bufEnd := bufStart + uintptr(len(buf))

	regs, err := readSmaps()
	if err != nil {
		return nil, err
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return nil, fmt.Errorf("memscan: %w", err)
	}
	defer mem.Close()
	st := &scanState{fd: int(mem.Fd()), ms: ms, buf: buf, raw: make([]rawHit, 0, maxHits), unrecorded: make([]int, len(ms))}

	gc()
	for i, r := range regs {
		if r.perms[0] != 'r' || r.rssKB+r.swapKB == 0 || strings.HasPrefix(r.path, "[vvar") || r.path == "[vsyscall]" {
			st.skipped++
			continue
		}
		if r.start < bufEnd && bufStart < r.end {
			if r.start < bufStart {
				st.scanRange(i, r.start, bufStart)
			}
			if bufEnd < r.end {
				st.scanRange(i, bufEnd, r.end)
			}
			st.regions++
			continue
		}
		st.scanRange(i, r.start, r.end)
		st.regions++
	}
	// The read is over: allocating is safe again.
	out := make([]Result, len(ms))
	for k := range out {
		out[k] = Result{Scanned: st.scanned, Regions: st.regions, Skipped: st.skipped, Unrecorded: st.unrecorded[k], Hits: []Hit{}}
	}
	for _, h := range st.raw {
		out[h.marker].Hits = append(out[h.marker].Hits, Hit{Encoding: h.enc, Addr: h.addr, Region: regs[h.region].String()})
	}
	return out, nil
}

// maxHits bounds the hits one scan records without allocating; more are
// counted in Result.Unrecorded.
const maxHits = 4096

// rawHit is a hit recorded during the read, before Region is spelled out.
type rawHit struct {
	marker int
	enc    Encoding
	addr   uintptr
	region int
}

// scanState is one scan in progress; it allocates nothing.
type scanState struct {
	fd               int
	ms               []*Marker
	buf              []byte
	raw              []rawHit
	unrecorded       []int
	scanned          int64
	regions, skipped int
}

func (st *scanState) scanRange(region int, from, to uintptr) {
	buf := st.buf
	overlap := uintptr(len(buf) - chunkSize)
	for off := from; off < to; {
		end := min(off+uintptr(chunkSize)+overlap, to)
		chunk := buf[:end-off]
		n, err := unix.Pread(st.fd, chunk, int64(off))
		if err != nil || n <= 0 {
			// An unreadable page (a guard page inside a mapping): skip it.
			off = (off + 4096) &^ 4095
			continue
		}
		// After a full read that does not reach the end, a copy starting in
		// the overlap is left to the next chunk; otherwise every copy in
		// what was read belongs to this one.
		limit, next := n, off+uintptr(n)
		if n == len(chunk) && end < to {
			limit, next = chunkSize, off+uintptr(chunkSize)
		}
		chunk = chunk[:n]
		st.scanned += int64(next - off)
		for k, m := range st.ms {
			for _, p := range m.patterns {
				for i := 0; ; {
					j := p.index(chunk[i:])
					if j < 0 || i+j >= limit {
						break
					}
					at := i + j
					if len(st.raw) < cap(st.raw) {
						st.raw = append(st.raw, rawHit{k, p.enc, off + uintptr(at), region})
					} else {
						st.unrecorded[k]++
					}
					i = at + len(p.masked)
				}
			}
		}
		wipe(chunk)
		off = next
	}
}

// index returns the offset of the first match of p in b, or -1.
func (p *pattern) index(b []byte) int {
	first := p.masked[0] ^ p.pad[0]
	for i := 0; i+len(p.masked) <= len(b); {
		j := indexByte(b[i:len(b)-len(p.masked)+1], first)
		if j < 0 {
			return -1
		}
		i += j
		if p.matchAt(b[i:]) {
			return i
		}
		i++
	}
	return -1
}
