package session_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// The main flow: a vault in a folder, a Manager for one named session, a
// login, an update, and the next run of the program finding the session.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "session-example")
	defer os.RemoveAll(dir)
	b, err := file.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte("correct horse battery staple")))
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	m, err := session.NewManager(ctx, v.Store("trading-bot"))
	if err != nil {
		log.Fatal(err) // a stored session that cannot be read is an error, never a fresh start
	}
	// After a login: tokens (copied; wipe your own), and the cookies the
	// login response set.
	exp := time.Now().Add(time.Hour)
	tokens := session.NewAuthTokens([]byte("eyJ...access"), []byte("eyJ...refresh"), &exp)
	defer tokens.Destroy()
	h := http.Header{}
	h.Add("Set-Cookie", "auth-access-token=eyJ...cookie==; HttpOnly; Secure")
	h.Add("Set-Cookie", "auth-refresh-token=eyJ...refresh==; HttpOnly; Secure")
	cookies := session.ParseSetCookies(h)
	defer cookies.Destroy()
	if err := m.CreateSession(ctx, tokens, nil, &cookies); err != nil {
		log.Fatal(err) // with auto-save (the default) the session is sealed on disk now
	}
	m.MarkAPICall("api.axiom.trade") // no I/O: written behind
	fmt.Println(m.IsSessionValid(), m.NeedsRefresh())
	m.Close(ctx) // flushes, then wipes every secret it held

	// The next run.
	m2, err := session.NewManager(ctx, v.Store("trading-bot"))
	if err != nil {
		log.Fatal(err)
	}
	defer m2.Close(ctx)
	md, _ := m2.Metadata()
	fmt.Println(m2.IsSessionValid(), *md.CurrentAPIServer)
	// Output:
	// true false
	// true api.axiom.trade
}

// Summary, with a fixed clock.
func ExampleManager_Summary() {
	ctx := context.Background()
	now := time.Date(2025, 8, 14, 17, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m, _ := session.NewManager(ctx, newExampleStore(), session.WithClock(clock))
	defer m.Close(ctx)
	fmt.Println(m.Summary())

	exp := now.Add(time.Hour)
	tokens := session.NewAuthTokens([]byte("access"), []byte("refresh"), &exp)
	defer tokens.Destroy()
	m.CreateSession(ctx, tokens, nil, nil)
	now = now.Add(47 * time.Minute)
	fmt.Println(m.Summary())
	// Output:
	// No active session
	// Session: INVALID | Tokens: NEEDS_REFRESH | Cookies: MISSING | Turnkey: NOT_SET | Age: 47m | Last API: NEVER
}

// Secrets redact themselves wherever they could leak by accident.
func ExampleSecret() {
	s := session.NewSecret([]byte("eyJhbGciOi..."))
	defer s.Destroy()
	fmt.Printf("%v %s %q %x %#v\n", s, s, s, s, s)
	err := fmt.Errorf("login failed with token %v", s)
	fmt.Println(err)
	// Output:
	// [REDACTED] [REDACTED] [REDACTED] [REDACTED] session.Secret([REDACTED])
	// login failed with token [REDACTED]
}

// Cookie values with '=' are kept; a response without g_state does not
// reset the session's.
func ExampleParseSetCookies() {
	h := http.Header{}
	h.Add("Set-Cookie", "auth-access-token=YWJj==; Path=/; HttpOnly")
	h.Add("Set-Cookie", "cf_clearance=a=b; Path=/")
	c := session.ParseSetCookies(h)
	defer c.Destroy()
	fmt.Println(string(c.AuthAccessToken.Bytes()), string(c.Additional["cf_clearance"].Bytes()), c.GState == nil)
	// Output: YWJj== a=b true
}

// An http.Client whose requests carry the session, refreshing the tokens
// through your auth endpoint when they need it.
func ExampleNewTransport() {
	ctx := context.Background()
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("server got:", r.Header.Get("Authorization"))
		http.SetCookie(w, &http.Cookie{Name: "auth-access-token", Value: "rotated==", Secure: true})
	}))
	defer api.Close()

	refresh := func(ctx context.Context, refreshToken session.Secret) (session.AuthTokens, *session.AuthCookies, error) {
		// POST refreshToken.Bytes() to the auth server here. Return an
		// error wrapping session.ErrUnauthorized if it refuses the token.
		exp := time.Now().Add(time.Hour)
		return session.NewAuthTokens([]byte("fresh-access"), []byte("fresh-refresh"), &exp), nil, nil
	}
	m, _ := session.NewManager(ctx, newExampleStore(), session.WithRefresher(refresh))
	defer m.Close(ctx)
	// Expired tokens: the first request waits for a refresh. (Tokens
	// that are only due for one are sent while a refresh runs in the
	// background.)
	exp := time.Now().Add(-time.Minute)
	tokens := session.NewAuthTokens([]byte("old-access"), []byte("old-refresh"), &exp)
	defer tokens.Destroy()
	m.CreateSession(ctx, tokens, nil, nil)

	// Credentials go to this host and port only (without a port: 443).
	apiHost := strings.TrimPrefix(api.URL, "https://")
	client := &http.Client{Transport: session.NewTransport(m, api.Client().Transport, session.WithHosts(apiHost))}
	resp, err := client.Get(api.URL + "/portfolio")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	header, _ := m.CookieHeader()
	fmt.Println("cookies now:", header)
	// Output:
	// server got: Bearer fresh-access
	// cookies now: g_state={"i_l":0}; auth-access-token=rotated==
}

// Several named sessions, one active.
func ExampleRegistry() {
	ctx := context.Background()
	r := session.NewRegistry()
	defer r.Close(ctx)
	for _, name := range []string{"trading", "monitoring"} {
		m, _ := session.NewManager(ctx, newExampleStore())
		r.Add(name, m)
	}
	fmt.Println(r.Switch("monitoring"))
	fmt.Println(r.Switch("backtest"))
	id, _, _ := r.Active()
	fmt.Println(id)
	// Output:
	// <nil>
	// session: no session "backtest" in the registry
	// monitoring
}
