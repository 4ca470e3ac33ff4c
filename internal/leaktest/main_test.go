package leaktest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/memscan"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

func TestMain(m *testing.M) {
	reexec.Main(m, map[string]reexec.Func{
		"mem": memChild,
	})
}

const (
	sessionName = "bot"
	// passphrase unlocks the harness's vaults. Tests that check where a
	// passphrase goes use a marker instead.
	passphrase = "leak-harness-passphrase"
)

var testKDF = kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}

func vaultOpts(pass []byte) []vault.Option {
	return []vault.Option{vault.WithPassphrase(pass), vault.WithKDFParams(testKDF), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting)}
}

// newVault creates an empty file-backed vault in a temp folder.
func newVault(t *testing.T, opts ...file.Option) (dir string, b *file.Backend, v *vault.Vault) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	v, err = vault.Create(context.Background(), b, vaultOpts([]byte(passphrase))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(); b.Close() })
	return dir, b, v
}

// markers are the secrets planted in one session: one per kind of secret
// field, so that a leak names the field.
type markers struct {
	Access, Refresh, AuthCookie, Cookie, Turnkey *memscan.Marker
}

func newMarkers() *markers {
	return &markers{
		Access: memscan.NewMarker(40), Refresh: memscan.NewMarker(40),
		AuthCookie: memscan.NewMarker(40), Cookie: memscan.NewMarker(40), Turnkey: memscan.NewMarker(40),
	}
}

func (ms *markers) all() map[string]*memscan.Marker {
	return map[string]*memscan.Marker{
		"access_token": ms.Access, "refresh_token": ms.Refresh,
		"auth_cookie": ms.AuthCookie, "cookie": ms.Cookie, "turnkey_secret": ms.Turnkey,
	}
}

// find reports the fields whose marker appears in b, in any encoding.
func (ms *markers) find(b []byte) []string {
	var found []string
	for name, m := range ms.all() {
		if m.MatchesAny(b) {
			found = append(found, name)
		}
	}
	return found
}

// secret makes a session.Secret holding marker m and wipes the
// temporary plain copy.
func secret(m *memscan.Marker) session.Secret {
	p := m.Plain()
	defer memscan.Wipe(p)
	return session.NewSecret(p)
}

func secretPtr(m *memscan.Marker) *session.Secret {
	s := secret(m)
	return &s
}

// tokens are the marker tokens, expiring in a day.
func (ms *markers) tokens() session.AuthTokens {
	a, r := ms.Access.Plain(), ms.Refresh.Plain()
	defer memscan.Wipe(a)
	defer memscan.Wipe(r)
	exp := time.Now().Add(24 * time.Hour)
	return session.NewAuthTokens(a, r, &exp)
}

// login is a login result with the marker tokens and Turnkey secret.
func (ms *markers) login() session.LoginResult {
	return session.LoginResult{
		Tokens: ms.tokens(),
		TurnkeyCredentials: &session.TurnkeyCredentials{
			OrganizationID: "org-0123456789", UserID: "user-0123456789", ClientSecret: secret(ms.Turnkey),
		},
	}
}

// turnkey is a Turnkey session with the marker secret.
func (ms *markers) turnkey() session.TurnkeySession {
	exp := time.Now().Add(24 * time.Hour)
	return session.TurnkeySession{
		OrganizationID: "org-0123456789", UserID: "user-0123456789", Username: "u",
		ClientSecret: secret(ms.Turnkey), CreatedAt: time.Now(), ExpiresAt: &exp,
	}
}

// cookies are the marker cookies: both auth cookies and one extra.
func (ms *markers) cookies() session.AuthCookies {
	c := session.DefaultAuthCookies()
	c.AuthAccessToken = secretPtr(ms.AuthCookie)
	c.AuthRefreshToken = secretPtr(ms.AuthCookie)
	c.Additional["extra"] = secret(ms.Cookie)
	return c
}

// sessionJSON is an axiomtrade-rs session file holding the markers. The
// caller wipes it.
func (ms *markers) sessionJSON() []byte {
	b := []byte(`{"tokens":{"access_token":"`)
	b = ms.Access.AppendPlain(b)
	b = append(b, `","refresh_token":"`...)
	b = ms.Refresh.AppendPlain(b)
	b = append(b, `","expires_at":"2030-01-01T00:00:00Z"},"cookies":{"auth_access_token":"`...)
	b = ms.AuthCookie.AppendPlain(b)
	b = append(b, `","auth_refresh_token":"`...)
	b = ms.AuthCookie.AppendPlain(b)
	b = append(b, `","g_state":"{\"i_l\":0}","additional_cookies":{"extra":"`...)
	b = ms.Cookie.AppendPlain(b)
	b = append(b, `"}},"turnkey_session":{"organization_id":"org","user_id":"user-0123456789","username":"u","client_secret":"`...)
	b = ms.Turnkey.AppendPlain(b)
	b = append(b, `","api_keys":[],"created_at":"2025-08-14T17:29:28.482990125Z","expires_at":"2030-01-01T00:00:00Z"},"user_info":null,`...)
	b = append(b, `"session_metadata":{"created_at":"2025-08-14T17:29:28.482913067Z","last_refreshed_at":null,"last_api_call_at":null,"current_api_server":null,"user_agent":"ua","ip_address":null,"client_fingerprint":null}}`...)
	return b
}
