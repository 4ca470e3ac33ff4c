package session_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessionvault/sessionvault/session"
)

// A bot whose auth server speaks OAuth 2: the Manager refreshes through
// the token endpoint of an oauth2.Config, stores every rotated refresh
// token before it is used, and hands x/oauth2's client its tokens. No
// refresh code of your own.
func ExampleManager_TokenSource() {
	ctx := context.Background()
	// Your auth and API servers; here a local stand-in.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"fresh-access","token_type":"Bearer","refresh_token":"fresh-refresh","expires_in":3600}`)
		case "/api":
			fmt.Fprint(w, "api got ", r.Header.Get("Authorization"))
		}
	}))
	defer srv.Close()
	cfg := &oauth2.Config{ClientID: "bot", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token"}}

	m, err := session.NewManager(ctx, newExampleStore(), session.WithRefresher(session.OAuth2Refresher(cfg)))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)
	// Start the session from the login's *oauth2.Token (cfg.Exchange,
	// cfg.PasswordCredentialsToken, a device flow). This one has expired,
	// so the first request waits for a refresh.
	login := &oauth2.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: time.Now().Add(-time.Minute)}
	tokens := session.AuthTokensFromOAuth2(login)
	err = m.CreateSession(ctx, tokens, nil, nil)
	tokens.Destroy()
	if err != nil {
		log.Fatal(err)
	}

	client := oauth2.NewClient(ctx, m.TokenSource(ctx))
	resp, err := client.Get(srv.URL + "/api")
	if err != nil {
		log.Fatal(err) // errors.Is(err, session.ErrReauthRequired): log in again
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	fmt.Println(m.NeedsRefresh())
	// Output:
	// api got Bearer fresh-access
	// false
}

// The default validity windows for a few token lifetimes: the seed's five
// and fifteen minutes from an hour up, a tenth and a quarter of the
// lifetime below.
func ExampleDefaultBuffers() {
	for _, l := range []time.Duration{3 * time.Second, 5 * time.Minute, time.Hour, 24 * time.Hour} {
		expiry, refresh := session.DefaultBuffers(l)
		fmt.Printf("%v: expired %v early, refreshed %v early\n", l, expiry, refresh)
	}
	// Output:
	// 3s: expired 300ms early, refreshed 750ms early
	// 5m0s: expired 30s early, refreshed 1m15s early
	// 1h0m0s: expired 5m0s early, refreshed 15m0s early
	// 24h0m0s: expired 5m0s early, refreshed 15m0s early
}

// The refresh loop of a bot that does its own HTTP: NeedsRefresh is true
// exactly when Refresh would get new tokens (never for a Turnkey session
// near its expiry), and failed refreshes back off, so the loop neither
// rotates tokens on every turn nor hammers a server that is down.
// RefreshIfNeeded is the same in one call.
func ExampleManager_NeedsRefresh() {
	ctx := context.Background()
	calls := 0
	refresh := func(ctx context.Context, rt session.Secret) (session.AuthTokens, *session.AuthCookies, error) {
		calls++
		exp := time.Now().Add(time.Hour)
		return session.NewAuthTokens([]byte("new-access"), []byte("new-refresh"), &exp), nil, nil
	}
	// This bot refreshes 15 minutes early whatever the tokens' lifetime.
	m, _ := session.NewManager(ctx, newExampleStore(), session.WithRefresher(refresh), session.WithRefreshBuffer(15*time.Minute))
	defer m.Close(ctx)
	exp := time.Now().Add(10 * time.Minute) // due
	old := session.NewAuthTokens([]byte("old-access"), []byte("old-refresh"), &exp)
	m.CreateSession(ctx, old, nil, nil)
	old.Destroy()
	for range 3 { // your bot's main loop
		if m.NeedsRefresh() {
			if err := m.Refresh(ctx); err != nil {
				log.Print(err) // backed off; the current token stays in use while valid
			}
		}
	}
	fmt.Println("refreshes:", calls)
	// Output:
	// refreshes: 1
}
