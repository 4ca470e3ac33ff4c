//go:build linux

package session_test

import (
	"encoding/hex"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/memscan"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/session"
)

// TestMemoryScanAfterCleanup follows a unique token through each path of
// the Manager (created and saved; loaded from the vault; updated and
// replaced; all of these in turn), closes everything, runs the garbage
// collector and scans the whole memory of this process for the token
// (internal/memscan: the test holds only an XOR-masked copy) in plain,
// base64 and hex. The goal, and the assertion, is zero copies. The HTTP
// path may leave one Authorization header value ("Bearer " then the
// token: net/http needs it as a Go string, which cannot be wiped,
// SECURITY.md), one copy of the serialized request header in the write
// buffer net/http pools for its connections (it does not clear it), and
// at most one other copy in memory the runtime has not reused (seen in
// some runs under the race detector); a control run of
// it, with an unwiped plain and hex copy of the token dropped before it,
// must show those copies to the scan.
func TestMemoryScanAfterCleanup(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	const n = 48
	fig := figures.New("session/memory")
	fig.Declare("create", "load", "update", "all", "http", "http_authorization", "http_wire", "http_control_unwiped")
	defer fig.Report(t)

	// tokensFrom builds tokens whose access token is the marker, with no
	// plain copy left on the test's side.
	tokensFrom := func(m *memscan.Marker) session.AuthTokens {
		p := m.Plain()
		defer memscan.Wipe(p)
		return session.NewAuthTokens(p, []byte("refresh"), nil)
	}
	scan := func(path string, m *memscan.Marker) memscan.Result {
		r, err := memscan.Scan(m)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("memory scan, path %-8s: %v", path, r)
		fig.Add(path, int64(copies(r)))
		return r
	}
	expectZero := func(path string, r memscan.Result) {
		if n := copies(r); n != 0 {
			t.Errorf("path %s: %d copies of the token left after cleanup:\n%v", path, n, r)
		}
	}

	// create: CreateSession, durable save, Close.
	mc := memscan.NewMarker(n)
	func() {
		m, err := session.NewManager(ctx, tv.v.Store("create"))
		if err != nil {
			t.Fatal(err)
		}
		tok := tokensFrom(mc)
		err = m.CreateSession(ctx, tok, nil, nil)
		tok.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		m.MarkAPICall("api") // one more save, behind
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	expectZero("create", scan("create", mc))

	// load: the sealed session is written from a buffer wiped at once;
	// a Manager loads it, uses the token, and is closed.
	ml := memscan.NewMarker(n)
	func() {
		pt := append(make([]byte, 0, 256), `{"access_token":"`...) // sized: no growth copies
		pt = ml.AppendPlain(pt)
		pt = append(pt, `","refresh_token":"r","expires_at":null}`...)
		_, err := tv.v.Store("load").Seal(ctx, pt, backends.Absent)
		memscan.Wipe(pt)
		if err != nil {
			t.Fatal(err)
		}
		m, err := session.NewManager(ctx, tv.v.Store("load"))
		if err != nil {
			t.Fatal(err)
		}
		m.WithAccessToken(func(s session.Secret) error { return nil })
		if err := m.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	expectZero("load", scan("load", ml))

	// update: UpdateTokens to the marker (saved), then to another token
	// (the marker's buffer is wiped), ClearSession.
	mu := memscan.NewMarker(n)
	func() {
		m, err := session.NewManager(ctx, tv.v.Store("update"))
		if err != nil {
			t.Fatal(err)
		}
		first := session.NewAuthTokens([]byte("first"), []byte("r"), nil)
		defer first.Destroy()
		if err := m.CreateSession(ctx, first, nil, nil); err != nil {
			t.Fatal(err)
		}
		tok := tokensFrom(mu)
		err = m.UpdateTokens(ctx, tok)
		tok.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.UpdateTokens(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := m.ClearSession(ctx); err != nil {
			t.Fatal(err)
		}
		m.Close(ctx)
	}()
	expectZero("update", scan("update", mu))

	// all: one token created and saved by one Manager, loaded by a second,
	// updated around (cookies, metadata) and finally replaced.
	ma := memscan.NewMarker(n)
	func() {
		a, err := session.NewManager(ctx, tv.v.Store("all"))
		if err != nil {
			t.Fatal(err)
		}
		tok := tokensFrom(ma)
		err = a.CreateSession(ctx, tok, nil, nil)
		tok.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		b, err := session.NewManager(ctx, tv.v.Store("all"))
		if err != nil {
			t.Fatal(err)
		}
		c := session.AuthCookies{Additional: map[string]session.Secret{"x": session.NewSecret([]byte("1"))}}
		if err := b.UpdateCookies(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Destroy()
		if err := a.UpdateCookies(ctx, session.AuthCookies{Additional: map[string]session.Secret{"y": session.NewSecret([]byte("2"))}}); err != nil {
			t.Fatal(err) // a's view is stale: re-read, merge, write
		}
		snap, _ := b.Snapshot()
		snap.Destroy()
		other := session.NewAuthTokens([]byte("other"), []byte("r"), nil)
		if err := b.UpdateTokens(ctx, other); err != nil {
			t.Fatal(err)
		}
		other.Destroy()
		a.Close(ctx)
		b.Close(ctx)
	}()
	expectZero("all", scan("all", ma))

	// http: the token travels in request headers to a server in another
	// process, so that only the client's copies count.
	httpPath := func(mh *memscan.Marker, before func()) {
		srv, err := reexec.Start("http-sink", reexec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { srv.Kill(); srv.Wait() }()
		line, err := srv.WaitFor(ctx, "listening ")
		if err != nil {
			t.Fatalf("http-sink: %v %s", err, srv.Stderr())
		}
		before()
		url := "http://" + strings.TrimPrefix(line, "listening ")
		m, err := session.NewManager(ctx, tv.v.Store("http"))
		if err != nil {
			t.Fatal(err)
		}
		tok := tokensFrom(mh)
		m.CreateSession(ctx, tok, nil, nil)
		tok.Destroy()
		tr := &http.Transport{}
		c := &http.Client{Transport: session.NewTransport(m, tr, session.WithInsecureLoopback())}
		for range 3 {
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
		m.ClearSession(ctx)
		m.Close(ctx)
	}
	mh := memscan.NewMarker(n)
	httpPath(mh, func() {})
	r := scan("http", mh)
	auth, wire := bearerPrefixed(t, r)
	fig.Add("http_authorization", int64(auth))
	fig.Add("http_wire", int64(wire))
	if auth > 1 || wire > 1 || copies(r)-auth-wire > 1 {
		t.Errorf("path http: %d copies of the token left after cleanup (%d of them the Authorization value given to net/http, %d the request bytes in its write buffer), want at most one of each and one other:\n%v", copies(r), auth, wire, r)
	}

	// The control: the same path, with an unwiped plain and hex copy of
	// the token dropped before it, scanned before any collection.
	// No collection may run in between, or it could reclaim and reuse the
	// dropped copies before the scan.
	mc2 := memscan.NewMarker(n)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	httpPath(mc2, func() {
		p := mc2.Plain()
		unwiped := session.NewSecret(p)
		h := make([]byte, hex.EncodedLen(len(p)))
		hex.Encode(h, p)
		memscan.Wipe(p)
		_, _ = unwiped, h
	})
	r, err := memscan.ScanUncollected(mc2)
	if err != nil {
		t.Fatal(err)
	}
	fig.Add("http_control_unwiped", int64(copies(r)))
	if r.Count(memscan.Plain) < 1 || r.Count(memscan.Hex) < 1 {
		t.Errorf("http control: the dropped, unwiped plain and hex copies were not found: %v", r)
	}
}

// bearerPrefixed counts the plain hits of r that follow "Bearer ": the
// Authorization header value net/http was given (value), and the same
// header as net/http serialized it into a connection's write buffer
// ("Authorization: Bearer " before the token: wire). It reads the bytes
// before each hit, never the token.
func bearerPrefixed(t *testing.T, r memscan.Result) (value, wire int) {
	t.Helper()
	f, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const header = "Authorization: Bearer "
	for _, h := range r.Hits {
		if h.Encoding != memscan.Plain || h.Addr <= uintptr(len(header)) {
			continue
		}
		var b [len(header)]byte
		if _, err := f.ReadAt(b[:], int64(h.Addr)-int64(len(b))); err != nil {
			continue
		}
		switch {
		case string(b[:]) == header:
			wire++
		case string(b[len(b)-7:]) == "Bearer ":
			value++
		}
	}
	return value, wire
}

// copies counts the copies found in every encoding.
func copies(r memscan.Result) int {
	return r.Count(memscan.Plain) + r.Count(memscan.Base64) + r.Count(memscan.Hex)
}
