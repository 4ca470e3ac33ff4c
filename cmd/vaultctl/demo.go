package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/cli/fakeauth"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

var cmdDemo = &command{
	name:    "demo",
	summary: "the main job end to end, in a temporary vault (no setup)",
	help: `Runs the main job end to end with no setup and nothing left behind: starts a
local fake auth API on loopback, creates a vault in a temporary folder, logs
in, seals the session, makes an API call through the session's HTTP
transport (which refreshes the tokens first, rotating the refresh token),
prints the summary line, closes and reopens the vault and checks the
session, then clears the session, wipes the keys and removes the folder.

It uses argon2id at the policy floor (t=2, 19 MiB, p=1) so that it runs in
well under a second; a real vault uses the default (t=3, 64 MiB, p=4). It
ignores --dir, the passphrase flags, --keychain and --backend: the demo
vault has a random passphrase that is never shown.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(ctx context.Context, a *app, _ []string) error {
			return a.demo(ctx)
		}
	},
}

// demoRun collects the demo's steps, printing them as they happen
// (or, with --json, into one document at the end).
type demoRun struct {
	a      *app
	steps  []string
	params kdf.Params
	dir    string
	pass   []byte
	srv    *fakeauth.Server
}

func (d *demoRun) step(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	d.steps = append(d.steps, s)
	if !d.a.json {
		fmt.Fprintln(d.a.stdout, s)
	}
}

func (a *app) demo(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	d := &demoRun{a: a, params: kdf.Floor}

	tmp, err := os.MkdirTemp("", "vaultctl-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	d.dir = filepath.Join(tmp, "vault")

	d.srv = fakeauth.Start()
	defer d.srv.Close()
	d.step("1. fake auth API listening on %s (loopback only)", d.srv.URL())

	// A random passphrase: the demo shows the flow, not a secret.
	d.pass = make([]byte, 32)
	rand.Read(d.pass)
	defer secmem.Wipe(d.pass)

	summary, err := d.loginSealRefresh(ctx)
	if err != nil {
		return err
	}
	if err := d.reopenAndClean(ctx); err != nil {
		return err
	}
	d.step("8. cleaned up: session wiped from memory and deleted from the vault, data keys wiped on close, temporary folder removed")

	if a.json {
		counts := d.srv.Counts()
		return a.writeJSON(map[string]any{
			"ok":        true,
			"steps":     d.steps,
			"summary":   summary,
			"kdf":       kdfDoc(d.params),
			"logins":    counts.Logins,
			"refreshes": counts.Refreshes,
			"api_calls": counts.APICalls,
		})
	}
	return nil
}

// loginSealRefresh creates the vault, logs in, seals the session, makes
// an API call through the session's transport (which refreshes first) and
// returns the summary line. Everything it opens is closed (and wiped) when
// it returns.
func (d *demoRun) loginSealRefresh(ctx context.Context) (string, error) {
	b, err := file.New(d.dir)
	if err != nil {
		return "", err
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, vault.WithPassphrase(d.pass), vault.WithKDFParams(d.params))
	if err != nil {
		return "", err
	}
	defer v.Close()
	d.step("2. created vault %s in %s with a passphrase slot: %v (the policy floor, for a fast demo; real vaults default to %v)",
		v.ID(), d.dir, d.params, kdf.Default)

	login, cookies, err := demoLogin(ctx, d.srv)
	if err != nil {
		return "", err
	}
	d.step("3. logged in as %s: access token valid for %v, so a refresh is due (this demo refreshes 15 minutes early)",
		fakeauth.Email, d.srv.AccessTTL)

	m, err := session.NewManager(ctx, v.Store("demo"), session.WithAutoSave(true), session.WithRefresher(demoRefresher(d.srv)),
		session.WithRefreshBuffer(session.RefreshBuffer))
	if err != nil {
		login.Destroy()
		cookies.Destroy()
		return "", err
	}
	defer m.Close(ctx)
	err = m.CreateSessionFromLoginResult(ctx, login, &cookies)
	login.Destroy()
	cookies.Destroy()
	if err != nil {
		return "", err
	}
	file := filepath.Join(d.dir, "sessions", "demo.sealed")
	sealed, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	if bytes.Contains(sealed, []byte("fake-access-")) || bytes.Contains(sealed, []byte("fake-refresh-")) {
		return "", errors.New("demo: a token is readable in the sealed file")
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	d.step("4. sealed session \"demo\" (%d bytes, mode %v, XChaCha20-Poly1305); no token readable in the file", len(sealed), fi.Mode().Perm())

	// Refresh (the tokens are due), then an API call through the
	// session's transport. (The transport would refresh in the
	// background and send the call with the current tokens.) The fake server is plain http on loopback; anywhere else the
	// transport refuses to send credentials without TLS.
	u, err := url.Parse(d.srv.URL())
	if err != nil {
		return "", err
	}
	var transportErr error
	client := &http.Client{Transport: session.NewTransport(m, http.DefaultTransport,
		session.WithInsecureLoopback(), session.WithHosts(u.Host),
		session.WithErrorHandler(func(err error) { transportErr = err }))}
	if err := m.RefreshIfNeeded(ctx); err != nil {
		return "", fmt.Errorf("demo: refresh: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.srv.URL()+fakeauth.APIPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("demo: API call: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if transportErr != nil {
		return "", fmt.Errorf("demo: API call: %w", transportErr)
	}
	if n := d.srv.Counts().Refreshes; resp.StatusCode != http.StatusOK || n != 1 {
		return "", fmt.Errorf("demo: API call: status %d after %d refreshes, want 200 after 1", resp.StatusCode, n)
	}
	d.step("5. API call: %d OK; the tokens were refreshed first (the refresh token rotated and was saved before the call)", resp.StatusCode)

	summary := m.Summary()
	d.step("6. %s", summary)
	if !d.a.json {
		// The summary line on its own line, for scripts and humans.
		fmt.Fprintln(d.a.stdout, summary)
	}
	if err := m.Close(ctx); err != nil {
		return "", err
	}
	return summary, nil
}

// reopenAndClean opens the vault again (one argon2id run), checks that
// the refreshed session is there and valid (the tokens the login gave
// would show NEEDS_REFRESH), then clears it: wiped and deleted.
func (d *demoRun) reopenAndClean(ctx context.Context) error {
	b, err := file.New(d.dir)
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, vault.WithPassphrase(d.pass))
	if err != nil {
		return err
	}
	defer v.Close()
	m, err := session.NewManager(ctx, v.Store("demo"), session.WithAutoSave(true), session.WithRefreshBuffer(session.RefreshBuffer))
	if err != nil {
		return err
	}
	defer m.Close(ctx)
	if !m.IsSessionValid() || m.NeedsRefresh() {
		return fmt.Errorf("demo: the reopened session is not the refreshed one: %s", m.Summary())
	}
	d.step("7. reopened the vault (one argon2id run) and the session: %s", m.Summary())

	if err := m.ClearSession(ctx); err != nil {
		return err
	}
	if err := m.Close(ctx); err != nil {
		return err
	}
	names, err := v.Sessions(ctx)
	if err != nil {
		return err
	}
	if len(names) != 0 {
		return fmt.Errorf("demo: %d sessions left after ClearSession", len(names))
	}
	return nil
}

// demoLogin logs in to the fake server and returns the login result and
// the auth cookies it set.
func demoLogin(ctx context.Context, srv *fakeauth.Server) (session.LoginResult, session.AuthCookies, error) {
	body, _ := json.Marshal(fakeauth.LoginRequest{Email: fakeauth.Email, Password: fakeauth.Password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+fakeauth.LoginPath, bytes.NewReader(body))
	if err != nil {
		return session.LoginResult{}, session.AuthCookies{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		return session.LoginResult{}, session.AuthCookies{}, fmt.Errorf("demo: login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return session.LoginResult{}, session.AuthCookies{}, fmt.Errorf("demo: login: status %d", resp.StatusCode)
	}
	var tr fakeauth.TokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil {
		return session.LoginResult{}, session.AuthCookies{}, fmt.Errorf("demo: login: %w", err)
	}
	exp := tr.ExpiresAt
	r := session.LoginResult{
		Tokens: session.NewAuthTokens([]byte(tr.AccessToken), []byte(tr.RefreshToken), &exp),
	}
	if tk := tr.Turnkey; tk != nil {
		r.TurnkeyCredentials = &session.TurnkeyCredentials{
			OrganizationID: tk.OrganizationID,
			UserID:         tk.UserID,
			ClientSecret:   session.NewSecret([]byte(tk.ClientSecret)),
		}
	}
	if u := tr.User; u != nil {
		id, email := u.ID, u.Email
		r.UserInfo = &session.UserInfo{ID: &id, Email: &email}
	}
	return r, session.ParseSetCookies(resp.Header), nil
}

// demoRefresher refreshes at the fake server: the refresh token goes in
// a request body built in a buffer that is wiped afterwards.
func demoRefresher(srv *fakeauth.Server) session.RefreshFunc {
	return func(ctx context.Context, refreshToken session.Secret) (session.AuthTokens, *session.AuthCookies, error) {
		body := make([]byte, 0, 32+refreshToken.Len())
		body = append(body, `{"refresh_token":"`...)
		for _, c := range refreshToken.Bytes() {
			if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
				secmem.Wipe(body)
				return session.AuthTokens{}, nil, errors.New("demo: refresh token is not plain ASCII")
			}
			body = append(body, c)
		}
		body = append(body, `"}`...)
		defer secmem.Wipe(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+fakeauth.RefreshPath, bytes.NewReader(body))
		if err != nil {
			return session.AuthTokens{}, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			return session.AuthTokens{}, nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return session.AuthTokens{}, nil, fmt.Errorf("demo: refresh refused: %w", session.ErrUnauthorized)
		}
		if resp.StatusCode != http.StatusOK {
			return session.AuthTokens{}, nil, fmt.Errorf("demo: refresh: status %d", resp.StatusCode)
		}
		var tr fakeauth.TokenResponse
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil {
			return session.AuthTokens{}, nil, err
		}
		exp := tr.ExpiresAt
		cookies := session.ParseSetCookies(resp.Header)
		return session.NewAuthTokens([]byte(tr.AccessToken), []byte(tr.RefreshToken), &exp), &cookies, nil
	}
}
