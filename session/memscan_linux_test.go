//go:build linux

package session_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/memscan"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/session"
)

// TestMemoryScanAfterCleanup follows a unique token through each path of
// the Manager (created and saved; loaded from the vault; updated and
// replaced; all of these in turn), closes everything, runs the garbage
// collector and scans the whole memory of this process for the token
// (internal/memscan: the test holds only an XOR-masked copy). The goal,
// and the assertion, is zero copies. The HTTP path is measured too and
// only logged: net/http needs the Authorization and Cookie headers as Go
// strings, which cannot be wiped (SECURITY.md).
func TestMemoryScanAfterCleanup(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	const n = 48

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
		t.Logf("memory scan, path %-8s: %d plain, %d base64 copies (%v)", path, r.Count(memscan.Plain), r.Count(memscan.Base64), r)
		return r
	}
	expectZero := func(path string, r memscan.Result) {
		if n := r.Count(memscan.Plain) + r.Count(memscan.Base64); n != 0 {
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

	// http (informational): the token travels in request headers to a
	// server in another process, so that only the client's copies count.
	mh := memscan.NewMarker(n)
	func() {
		srv, err := reexec.Start("http-sink", reexec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { srv.Kill(); srv.Wait() }()
		line, err := srv.WaitFor(ctx, "listening ")
		if err != nil {
			t.Fatalf("http-sink: %v %s", err, srv.Stderr())
		}
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
	}()
	scan("http", mh) // not asserted: documented net/http string copies
}
