//go:build unix

package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/cli/fakeauth"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/session"
)

// roleCookieWriter runs in a child process: args dir, passFile, prefix, n.
// It adds n cookies named prefix_i, one UpdateCookies each, interleaved
// with MarkAPICall, through its own vault handle and Manager.
func roleCookieWriter(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, b, err := openVault(ctx, args[0], args[1])
	if err != nil {
		return err
	}
	defer b.Close()
	defer v.Close()
	n, _ := strconv.Atoi(args[3])
	m, err := session.NewManager(ctx, v.Store("shared"), session.WithMetadataFlushInterval(time.Millisecond))
	if err != nil {
		return err
	}
	reexec.Report("ready")
	for i := range n {
		c := session.AuthCookies{Additional: map[string]session.Secret{
			fmt.Sprintf("%s_%d", args[2], i): session.NewSecret([]byte("v" + strconv.Itoa(i))),
		}}
		err := m.UpdateCookies(ctx, c)
		c.Destroy()
		if err != nil {
			return err
		}
		m.MarkAPICall(args[2])
	}
	return m.Close(ctx)
}

// TestTwoProcessesNeverLoseUpdates: processes write to one session at
// once, each from a Manager whose view goes stale at every write of the
// other; every cookie of every process must be stored at the end.
func TestTwoProcessesNeverLoseUpdates(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	m, err := session.NewManager(ctx, tv.v.Store("shared"))
	if err != nil {
		t.Fatal(err)
	}
	tok := session.NewAuthTokens([]byte("a"), []byte("r"), nil)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	const procs, per = 3, 25
	var children []*reexec.Child
	for i := range procs {
		c, err := reexec.Start("cookie-writer", reexec.Options{}, tv.dir, tv.passFile, fmt.Sprintf("p%d", i), strconv.Itoa(per))
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, c)
	}
	for _, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v\n%s", err, c.Stderr())
		}
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Destroy()
	for i := range procs {
		for j := range per {
			name := fmt.Sprintf("p%d_%d", i, j)
			if v, ok := snap.Cookies.Additional[name]; !ok || string(v.Bytes()) != "v"+strconv.Itoa(j) {
				t.Errorf("cookie %s lost", name)
			}
		}
	}
	if snap.Metadata.LastAPICallAt == nil {
		t.Error("metadata of the children lost")
	}
	m.Close(ctx)
}

// roleBot runs in a child process: args dir, passFile, auth URL, calls.
// It makes API calls through the Transport, refreshing through the fake
// auth server when the tokens need it, and reports "done N" with N
// successful calls.
func roleBot(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, b, err := openVault(ctx, args[0], args[1])
	if err != nil {
		return err
	}
	defer b.Close()
	defer v.Close()
	authURL := args[2]
	calls, _ := strconv.Atoi(args[3])
	m, err := session.NewManager(ctx, v.Store("fleet"), session.WithRefresher(fakeRefresher(authURL)),
		session.WithRefreshBuffer(session.RefreshBuffer), session.WithExpiryBuffer(session.ExpiryBuffer))
	if err != nil {
		return err
	}
	defer m.Close(ctx)
	reexec.Report("ready")
	client := &http.Client{Transport: session.NewTransport(m, nil, session.WithInsecureLoopback(),
		session.WithErrorHandler(func(err error) { reexec.Report("transport error: %v", err) }))}
	ok := 0
	for range calls {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL+fakeauth.APIPath, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
	}
	reexec.Report("done %d", ok)
	return nil
}

// fakeRefresher calls the fake auth server's refresh endpoint. (A test
// refresher: encoding/json makes strings of the tokens.)
func fakeRefresher(authURL string) session.RefreshFunc {
	return func(ctx context.Context, rt session.Secret) (session.AuthTokens, *session.AuthCookies, error) {
		body, _ := json.Marshal(fakeauth.RefreshRequest{RefreshToken: string(rt.Bytes())})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, authURL+fakeauth.RefreshPath, strings.NewReader(string(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return session.AuthTokens{}, nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return session.AuthTokens{}, nil, fmt.Errorf("fake auth: invalid_grant: %w", session.ErrUnauthorized)
		}
		if resp.StatusCode != http.StatusOK {
			return session.AuthTokens{}, nil, fmt.Errorf("fake auth: status %d", resp.StatusCode)
		}
		var tr fakeauth.TokenResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			return session.AuthTokens{}, nil, err
		}
		c := session.ParseSetCookies(resp.Header)
		return session.NewAuthTokens([]byte(tr.AccessToken), []byte(tr.RefreshToken), &tr.ExpiresAt), &c, nil
	}
}

// TestProcessesRefreshOnce: several processes share one session whose
// tokens need a refresh, each calling the API through the Transport at
// once. The fake auth server rotates refresh tokens and revokes all on a
// reuse: exactly one refresh, no reuse, no 401.
func TestProcessesRefreshOnce(t *testing.T) {
	ctx := ctxFor(t)
	tv := newVault(t)
	srv := fakeauth.Start()
	defer srv.Close()
	// Log in: the access token lives 10 minutes, inside the 15-minute
	// refresh window.
	resp, err := http.Post(srv.URL()+fakeauth.LoginPath, "application/json",
		strings.NewReader(`{"email":"`+fakeauth.Email+`","password":"`+fakeauth.Password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tr fakeauth.TokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	cookies := session.ParseSetCookies(resp.Header)
	defer cookies.Destroy()
	m, err := session.NewManager(ctx, tv.v.Store("fleet"), session.WithRefreshBuffer(session.RefreshBuffer))
	if err != nil {
		t.Fatal(err)
	}
	tok := session.NewAuthTokens([]byte(tr.AccessToken), []byte(tr.RefreshToken), &tr.ExpiresAt)
	defer tok.Destroy()
	if err := m.CreateSession(ctx, tok, nil, &cookies); err != nil {
		t.Fatal(err)
	}
	if !m.NeedsRefresh() || !m.IsSessionValid() {
		t.Fatal("setup: want a valid session that needs a refresh")
	}
	m.Close(ctx)

	const procs, calls = 4, 10
	var children []*reexec.Child
	for range procs {
		c, err := reexec.Start("bot", reexec.Options{}, tv.dir, tv.passFile, srv.URL(), strconv.Itoa(calls))
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, c)
	}
	for _, c := range children {
		line, err := c.WaitFor(ctx, "done ")
		if err != nil {
			t.Fatalf("bot: %v\n%s\n%v", err, c.Stderr(), c.Lines())
		}
		if line != fmt.Sprintf("done %d", calls) {
			t.Errorf("bot: %s (lines %v)", line, c.Lines())
		}
		if err := c.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("bot exit: %v\n%s", err, c.Stderr())
		}
	}
	got := srv.Counts()
	t.Logf("fake auth server: %+v", got)
	// A process may send one request with the old access token while
	// another's refresh (in the background) rotates it: the server's
	// 401 makes it re-read the stored tokens (no refresh call) and retry.
	if got.Refreshes != 1 || got.ReusedRefresh != 0 || got.Unauthorized > procs || got.APICalls != procs*calls {
		t.Errorf("refreshes %d (want 1), reused %d, 401s %d, API calls %d (want %d)",
			got.Refreshes, got.ReusedRefresh, got.Unauthorized, got.APICalls, procs*calls)
	}
}

// roleHTTPSink serves 204 to every request on a loopback port until it is
// killed.
func roleHTTPSink([]string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	reexec.Report("listening %s", l.Addr())
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
}
