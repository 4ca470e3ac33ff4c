package leaktest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/memscan"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// memPaths are the paths whose leftovers are measured, each in a fresh
// process, and the number of marker copies each may leave after cleanup
// (the goal, and today's measurement, is zero; a path that regresses
// fails).
var memPaths = []struct {
	name   string
	budget int
	doc    string
}{
	{"create", 0, "CreateSession with marker tokens and cookies, then Close"},
	{"load", 0, "NewManager loads a sealed marker session, then Close"},
	{"update", 0, "UpdateTokens and UpdateCookies with markers, then Close"},
	{"clear", 0, "NewManager loads a marker session, ClearSession, then Close"},
	{"import", 0, "ParseSession of an axiomtrade-rs file, MarshalPlaintext, Seal, read back, Destroy (vaultctl import's library calls)"},
}

// memChild runs one path in this fresh process, then cleans up, collects
// garbage and scans its own memory. args: path, vault folder, exported
// markers (access, refresh, auth cookie, cookie, turnkey, control).
func memChild(args []string) error {
	// No collection runs until the scans: one in the middle of the path
	// could reclaim and reuse a buffer dropped without a wipe, and the
	// scan before any collection would then miss it (the control below
	// did, under -race). The explicit collection comes after that scan.
	debug.SetGCPercent(-1)
	ctx := context.Background()
	path, dir := args[0], args[1]
	var ms markers
	for i, dst := range []**memscan.Marker{&ms.Access, &ms.Refresh, &ms.AuthCookie, &ms.Cookie, &ms.Turnkey} {
		m, err := memscan.ParseMarker(args[2+i])
		if err != nil {
			return err
		}
		*dst = m
	}
	// The control, a marker of its own: before the path runs, a plain
	// and a hex copy of it are made and dropped without a wipe, as a
	// Secret whose Destroy did nothing would be. The scan must find them
	// after the path, or its zeros prove nothing.
	control, err := memscan.ParseMarker(args[7])
	if err != nil {
		return err
	}
	dropUnwiped(control)
	if err := runPath(ctx, path, dir, &ms); err != nil {
		return err
	}
	// First without a collection: a copy dropped unwiped is still in
	// memory, so a zero here shows the path wiped what it held. One read
	// of the memory serves every marker, the control's included.
	names := []string{"access_token", "refresh_token", "auth_cookie", "cookie", "turnkey_secret"}
	all := ms.all()
	marks := make([]*memscan.Marker, 0, len(names)+1)
	for _, n := range names {
		marks = append(marks, all[n])
	}
	rs, err := memscan.ScanAllUncollected(append(marks, control)...)
	if errors.Is(err, memscan.ErrUnsupported) {
		reexec.Report("unsupported")
		return nil
	}
	if err != nil {
		return err
	}
	for i, n := range names {
		r := rs[i]
		reexec.Report("uncollected %s %d %d %d", n, r.Count(memscan.Plain), r.Count(memscan.Base64), r.Count(memscan.Hex))
	}
	r := rs[len(names)]
	reexec.Report("control %d %d %d", r.Count(memscan.Plain), r.Count(memscan.Base64), r.Count(memscan.Hex))
	// Then after a collection (ScanAll runs it).
	rs, err = memscan.ScanAll(marks...)
	if err != nil {
		return err
	}
	for i, n := range names {
		r := rs[i]
		reexec.Report("count %s %d %d %d", n, r.Count(memscan.Plain), r.Count(memscan.Base64), r.Count(memscan.Hex))
		for j, h := range r.Hits {
			if j == 8 {
				break
			}
			reexec.Report("hit %s %s %#x %s", n, h.Encoding, h.Addr, h.Region)
		}
	}
	reexec.Report("scanned %d", rs[0].Scanned)
	return nil
}

// dropUnwiped makes a plain and a hex copy of m's secret, as a Secret and
// a buffer, and drops both without wiping them.
//
//go:noinline
func dropUnwiped(m *memscan.Marker) {
	p := m.Plain()
	unwiped := session.NewSecret(p)
	h := make([]byte, hex.EncodedLen(len(p)))
	hex.Encode(h, p)
	memscan.Wipe(p)
	_, _ = unwiped, h
}

// controlLeak keeps a string copy of the access token alive: the control
// path proves the child's scan finds what a careless path leaves.
var controlLeak string

// openManager keeps the Manager of the "open" control path alive through
// the scan.
var openManager *session.Manager

func runPath(ctx context.Context, path, dir string, ms *markers) error {
	b, err := file.New(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, vaultOpts([]byte(passphrase))...)
	if err != nil {
		return err
	}
	defer v.Close()
	st := v.Store(sessionName)
	switch path {
	case "control":
		p := ms.Access.Plain()
		controlLeak = string(p)
		memscan.Wipe(p)
		return nil
	case "create":
		m, err := session.NewManager(ctx, st, session.WithAutoSave(true))
		if err != nil {
			return err
		}
		lr, ck := ms.login(), ms.cookies()
		err = m.CreateSessionFromLoginResult(ctx, lr, &ck)
		lr.Destroy()
		ck.Destroy()
		if err != nil {
			return err
		}
		return m.Close(ctx)
	case "open":
		// Loaded and not closed: the secrets must be found, or the scan
		// of the other paths would prove nothing.
		m, err := session.NewManager(ctx, st, session.WithAutoSave(true))
		openManager = m
		return err
	case "load":
		m, err := session.NewManager(ctx, st, session.WithAutoSave(true))
		if err != nil {
			return err
		}
		if !m.IsSessionValid() {
			return errors.New("loaded session is not valid")
		}
		return m.Close(ctx)
	case "update":
		m, err := session.NewManager(ctx, st, session.WithAutoSave(true))
		if err != nil {
			return err
		}
		tok, ck, tk := ms.tokens(), ms.cookies(), ms.turnkey()
		err = m.UpdateTokens(ctx, tok)
		if err == nil {
			err = m.UpdateCookies(ctx, ck)
		}
		if err == nil {
			err = m.UpdateTurnkeySession(ctx, tk)
		}
		tok.Destroy()
		ck.Destroy()
		tk.Destroy()
		if err != nil {
			return err
		}
		return m.Close(ctx)
	case "clear":
		m, err := session.NewManager(ctx, st, session.WithAutoSave(true))
		if err != nil {
			return err
		}
		if err := m.ClearSession(ctx); err != nil {
			return err
		}
		return m.Close(ctx)
	case "import":
		raw, err := readExact(filepath.Join(filepath.Dir(dir), "session.json"))
		if err != nil {
			return err
		}
		s, err := session.ParseSession(raw)
		memscan.Wipe(raw)
		if err != nil {
			return err
		}
		defer s.Destroy()
		plain, err := s.MarshalPlaintext()
		if err != nil {
			return err
		}
		defer memscan.Wipe(plain)
		if _, err := st.Seal(ctx, plain, backends.Absent); err != nil {
			return err
		}
		back, _, err := st.Open(ctx)
		if err != nil {
			return err
		}
		memscan.Wipe(back)
		return nil
	}
	return fmt.Errorf("unknown path %q", path)
}

// readExact reads a file into a buffer of exactly its size, so that the
// harness's own read leaves no grown-and-dropped copies behind.
func readExact(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	n := 0
	for n < len(buf) {
		k, err := f.Read(buf[n:])
		n += k
		if err != nil {
			memscan.Wipe(buf)
			return nil, err
		}
	}
	return buf, nil
}

// prepare sets up the vault folder a path starts from: empty for create
// and import (plus the plaintext file for import), a marker session for
// load and clear, a session without markers for update.
func prepare(t *testing.T, path string, ms *markers) string {
	t.Helper()
	ctx := context.Background()
	dir, _, v := newVault(t)
	switch path {
	case "load", "open", "clear", "update":
		m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true))
		if err != nil {
			t.Fatal(err)
		}
		if path == "update" {
			ck := session.DefaultAuthCookies()
			if err := m.CreateSession(ctx, session.NewAuthTokens([]byte("plain-access"), []byte("plain-refresh"), nil), nil, &ck); err != nil {
				t.Fatal(err)
			}
		} else {
			ck := ms.cookies()
			if err := m.CreateSessionFromLoginResult(ctx, ms.login(), &ck); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	case "import":
		doc := ms.sessionJSON()
		err := os.WriteFile(filepath.Join(filepath.Dir(dir), "session.json"), doc, 0o600)
		memscan.Wipe(doc)
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// memResult is what a child's scans found, per field: after a garbage
// collection (copies still reachable or not reclaimed) and before one
// (uncollected: also the copies dropped without a wipe).
type memResult struct {
	perField, uncollected   map[string]int
	total, uncollectedTotal int
	// control is what the uncollected scan found of the control marker
	// (dropped unwiped, plain and hex): plain, base64, hex.
	control [3]int
}

// runMem runs path in a fresh child and returns copies left per field.
func runMem(t *testing.T, path string) (perField map[string]int, total int) {
	r := runMemAll(t, path)
	return r.perField, r.total
}

// runMemAll runs path in a fresh child and returns both scans.
func runMemAll(t *testing.T, path string) memResult {
	t.Helper()
	ms := newMarkers()
	dir := prepare(t, path, ms)
	control := memscan.NewMarker(40)
	c, err := reexec.Start("mem", reexec.Options{}, path, dir,
		ms.Access.Export(), ms.Refresh.Export(), ms.AuthCookie.Export(), ms.Cookie.Export(), ms.Turnkey.Export(), control.Export())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, c.Stderr())
	}
	perField, uncollected := map[string]int{}, map[string]int{}
	total, uncollectedTotal := 0, 0
	var ctl [3]int
	scanned := false
	for _, l := range c.Lines() {
		f := strings.Fields(l)
		switch f[0] {
		case "unsupported":
			t.Skip("memory scan unsupported on this platform")
		case "count":
			n := 0
			for _, s := range f[2:] {
				k, _ := strconv.Atoi(s)
				n += k
			}
			perField[f[1]] = n
			total += n
		case "uncollected":
			n := 0
			for _, s := range f[2:] {
				k, _ := strconv.Atoi(s)
				n += k
			}
			uncollected[f[1]] = n
			uncollectedTotal += n
		case "control":
			for i := range ctl {
				ctl[i], _ = strconv.Atoi(f[1+i])
			}
		case "hit":
			t.Logf("%s: %s", path, l)
		case "scanned":
			scanned = true
		}
	}
	if !scanned || len(perField) != 5 || len(uncollected) != 5 {
		t.Fatalf("%s: child reported no scan: %q", path, c.Lines())
	}
	return memResult{perField, uncollected, total, uncollectedTotal, ctl}
}

// TestMemoryAfterCleanup measures, per path, the copies of the secrets
// (plain, hex or base64) left in a process's memory after cleanup: before
// any garbage collection (so a buffer dropped without a wipe counts) and
// after one. Each path has a control: a plain and a hex copy of another
// marker, dropped unwiped before the path runs, which the scan must find,
// so that the path's zeros show the wiping and not a scan that cannot see
// freed memory.
func TestMemoryAfterCleanup(t *testing.T) {
	f := figures.New("leaks/memory")
	for _, p := range memPaths {
		f.Declare(p.name)
	}
	t.Run("control", func(t *testing.T) {
		perField, _ := runMem(t, "control")
		if perField["access_token"] < 1 {
			t.Fatalf("a string copy kept alive in the child was not found: %v", perField)
		}
	})
	t.Run("open", func(t *testing.T) {
		perField, _ := runMem(t, "open")
		for field, n := range perField {
			if n < 1 {
				t.Errorf("a loaded, open session: %s not found in memory (%v)", field, perField)
			}
		}
	})
	for _, p := range memPaths {
		t.Run(p.name, func(t *testing.T) {
			r := runMemAll(t, p.name)
			perField, total := r.perField, r.total
			f.Add(p.name, int64(total))
			f.Add(p.name+"_uncollected", int64(r.uncollectedTotal))
			t.Logf("%s before any collection: %d copies %v", p.name, r.uncollectedTotal, r.uncollected)
			var detail []string
			for k, n := range perField {
				if n > 0 {
					detail = append(detail, fmt.Sprintf("%s=%d", k, n))
				}
			}
			sort.Strings(detail)
			t.Logf("%s (%s): %d copies %v", p.name, p.doc, total, detail)
			if total > p.budget {
				t.Errorf("%s leaves %d copies of secrets after cleanup (budget %d): %v", p.name, total, p.budget, detail)
			}
			if r.uncollectedTotal > p.budget {
				t.Errorf("%s leaves %d copies of secrets before any collection (budget %d): a buffer was dropped without a wipe: %v", p.name, r.uncollectedTotal, p.budget, r.uncollected)
			}
			// The control: a plain and a hex copy of another marker,
			// dropped unwiped before the path ran. The scan must see both.
			f.Add(p.name+"_control_unwiped", int64(r.control[0]+r.control[1]+r.control[2]))
			if r.control[0] < 1 || r.control[2] < 1 {
				t.Errorf("%s control: found %d plain and %d hex copies of the marker dropped unwiped before the path, want both: the scan cannot tell wiped from dropped", p.name, r.control[0], r.control[2])
			}
		})
	}
	f.Report(t)
}
