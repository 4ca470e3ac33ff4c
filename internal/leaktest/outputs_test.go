package leaktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/memscan"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// verbs are the fmt verbs tried on every value.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"}

// outputChecker sends values and errors through every output channel and
// looks for the markers in what comes out.
type outputChecker struct {
	t   *testing.T
	ms  *markers
	all []*memscan.Marker // every marker, passphrases included
	f   *figures.Set
	// selfTest counts leaks without failing the test: the self-test runs
	// the checker on types that leak on purpose.
	selfTest bool
}

func newOutputChecker(t *testing.T, ms *markers, extra ...*memscan.Marker) *outputChecker {
	f := figures.New("leaks/outputs")
	f.Declare("outputs", "leaks", "panics")
	c := &outputChecker{t: t, ms: ms, f: f}
	for _, m := range ms.all() {
		c.all = append(c.all, m)
	}
	c.all = append(c.all, extra...)
	return c
}

// check looks for every marker in out, produced by channel.
func (c *outputChecker) check(channel string, out []byte) {
	c.t.Helper()
	c.f.Inc("outputs")
	for i, m := range c.all {
		if m.MatchesAny(out) {
			c.f.Inc("leaks")
			if !c.selfTest {
				c.t.Errorf("%s shows secret #%d (%d bytes of output)", channel, i, len(out))
			}
		}
	}
}

// value sends v through fmt (every verb), log/slog (text and JSON, as an
// attribute and as the message), and encoding/json.
func (c *outputChecker) value(name string, v any) {
	c.t.Helper()
	p := figures.Protect(func() {
		for _, verb := range verbs {
			c.check(name+" fmt "+verb, []byte(fmt.Sprintf(verb, v)))
		}
		c.check(name+" fmt Sprint", []byte(fmt.Sprint(v)))
		c.check(name+" fmt Sprintln", []byte(fmt.Sprintln(v)))
		var buf bytes.Buffer
		for hn, h := range map[string]slog.Handler{
			"text": slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
			"json": slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		} {
			buf.Reset()
			l := slog.New(h)
			l.Info("value", "v", v)
			l.Info("value", slog.Any("any", v), slog.Group("g", "v", v))
			l.With("v", v).Error(fmt.Sprint(v))
			c.check(name+" slog "+hn, buf.Bytes())
		}
		out, err := json.Marshal(v)
		c.check(name+" json.Marshal", out)
		if err != nil {
			c.check(name+" json.Marshal error", []byte(err.Error()))
		}
		out, err = json.MarshalIndent(v, "", " ")
		c.check(name+" json.MarshalIndent", out)
		if err != nil {
			c.check(name+" json.MarshalIndent error", []byte(err.Error()))
		}
	})
	if p != nil {
		c.f.Inc("panics")
		c.check(name+" panic", []byte(p.Error()))
		c.t.Errorf("%s: formatting panicked: %v", name, p.Value)
	}
}

// err sends an error returned by a failing call through every channel
// (its message, fmt verbs, slog, and its chain's messages).
func (c *outputChecker) err(name string, err error) {
	c.t.Helper()
	if err == nil {
		c.t.Errorf("%s: the call did not fail", name)
		return
	}
	c.value(name+" error", err)
	walk(err, func(e error) { c.check(name+" error chain", []byte(e.Error())) })
}

// walk calls f on err and every error it wraps, through Unwrap() error
// and Unwrap() []error.
func walk(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, f)
		}
	}
}

// call runs f, which must fail, under a panic detector: the error and any
// panic go through the channels.
func (c *outputChecker) call(name string, f func() error) {
	c.t.Helper()
	var err error
	p := figures.Protect(func() { err = f() })
	if p != nil {
		c.f.Inc("panics")
		c.check(name+" recovered panic", []byte(p.Error()))
		c.t.Errorf("%s panicked", name)
		return
	}
	c.err(name, err)
}

// exportedTypes lists the exported type names declared in the non-test
// files of the package in dir.
func exportedTypes(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var names []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					names = append(names, f.Name.Name+"."+ts.Name.Name)
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

// notFormatted are exported types that hold no value worth printing:
// functions and interfaces.
var notFormatted = map[string]string{
	"session.Option":          "a func",
	"session.RefreshFunc":     "a func",
	"session.TransportOption": "a func",
	"session.Store":           "an interface (vault.Store is formatted)",
	"vault.Option":            "a func",
	"vault.KEKSealer":         "an interface (package tpm's Sealer holds a device path and PCR numbers only)",
	"vault.ServiceNamer":      "an interface (it names a service: no secret)",
}

// TestOutputsNeverShowSecrets drives every exported type of session, vault
// and kdf, every error of a failing call, the library's own log lines and
// recovered panics through fmt, slog and JSON, and looks for the markers.
func TestOutputsNeverShowSecrets(t *testing.T) {
	ctx := context.Background()
	ms := newMarkers()
	passMarker := memscan.NewMarker(40)
	c := newOutputChecker(t, ms, passMarker)

	// A full session holding a marker in every secret field.
	doc := ms.sessionJSON()
	s, err := session.ParseSession(doc)
	memscan.Wipe(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if !ms.Access.Matches(s.Tokens.AccessToken.Bytes()) {
		t.Fatal("the parsed session does not hold the marker: the harness would test nothing")
	}

	// A vault whose passphrase is a marker, and a Manager over it whose
	// logs are captured.
	dir := filepath.Join(t.TempDir(), "vault")
	inj := &failSwitch{}
	b, err := file.New(dir, file.WithStepHook(inj.hook))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pass := passMarker.Plain()
	v, err := vault.Create(ctx, b, vaultOpts(pass)...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true), session.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	lr, ck := ms.login(), ms.cookies()
	if err := m.CreateSessionFromLoginResult(ctx, lr, &ck); err != nil {
		t.Fatal(err)
	}
	key, err := kdf.InsecurePolicyForTesting.Derive(pass, kdf.NewSalt(), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Destroy()
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Destroy()
	tk := ms.turnkey()
	cred := *lr.TurnkeyCredentials
	meta, _ := m.Metadata()
	tr := session.NewTransport(m, http.DefaultTransport)
	reg := session.NewRegistry()
	if err := reg.Add("main", m); err != nil {
		t.Fatal(err)
	}

	samples := map[string][]any{
		"session.AuthSession":         {s, *s, snap},
		"session.AuthTokens":          {s.Tokens, &s.Tokens},
		"session.AuthCookies":         {s.Cookies, &s.Cookies, ck},
		"session.TurnkeySession":      {s.TurnkeySession, *s.TurnkeySession, tk},
		"session.TurnkeyAPIKey":       {session.TurnkeyAPIKey{APIKeyID: "k"}},
		"session.TurnkeyApiKey":       {session.TurnkeyApiKey{APIKeyID: "k"}},
		"session.LimitError":          {&session.LimitError{Field: "cookies.additional_cookies", Unit: "cookies", Size: 4097, Limit: 4096}},
		"session.TurnkeyCredentials":  {cred, &cred},
		"session.LoginResult":         {lr, &lr},
		"session.Secret":              {s.Tokens.AccessToken, &s.Tokens.AccessToken, s.Cookies.AuthAccessToken},
		"session.SessionMetadata":     {meta, &meta},
		"session.UserInfo":            {session.UserInfo{}, m.UserInfo()},
		"session.Manager":             {m},
		"session.Registry":            {reg},
		"session.LogoutError":         nil,
		"session.Transport":           {tr},
		"session.DecodeError":         nil, // from failing calls below
		"session.NotSavedError":       nil,
		"session.StoreError":          nil,
		"session.URLError":            nil,
		"session.RefreshError":        nil,
		"session.OAuth2Error":         {&session.OAuth2Error{Status: 400, Code: "invalid_grant"}, &session.OAuth2Error{Reason: "no usable response"}},
		"session.UnknownSessionError": {&session.UnknownSessionError{ID: "x"}},
		"vault.Vault":                 {v},
		"vault.Store":                 {v.Store(sessionName), *v.Store(sessionName)},
		"vault.Info":                  {v.Info()},
		"vault.SlotInfo":              {v.Info().Slots},
		"vault.SlotID":                {v.Info().UnlockedBy},
		"vault.SlotKind":              {vault.PassphraseSlot},
		"vault.FormatError":           nil,
		"vault.PolicyError":           nil,
		"vault.SlotError":             nil,
		"vault.CredentialError":       {&vault.CredentialError{Name: "vault-passphrase", Reason: "has mode 0644", Err: vault.ErrNotFound}},
		"vault.HeaderRecovery":        {&vault.HeaderRecovery{Damage: vault.ErrCorrupt, Restored: true, Sessions: 1, Unopenable: []vault.UnopenableSession{{Name: sessionName, Err: vault.ErrCorrupt, PreviousOpens: true}}}},
		"vault.UnopenableSession":     {vault.UnopenableSession{Name: sessionName, Err: vault.ErrCorrupt}},
		"vault.HeaderRecoveryError":   {&vault.HeaderRecoveryError{Damage: vault.ErrCorrupt, Unopenable: []string{sessionName}}},
		"vault.PurgeError":            {&vault.PurgeError{Step: "drop the previous header", Err: vault.ErrCorrupt}},
		"vault.RollbackError":         {&vault.RollbackError{Structure: "session", Name: sessionName, Got: 1, Want: 2}, &vault.RollbackError{Structure: "header", Got: 1, Want: 2}},
		"kdf.Key":                     {key},
		"kdf.Params":                  {testKDF},
		"kdf.Policy":                  {kdf.DefaultPolicy},
		"kdf.ParamError":              nil,
		"kdf.Budget":                  {kdf.DefaultBudget},
		"kdf.BudgetError":             {kdf.DefaultPolicy.CheckBudget([]kdf.Params{kdf.Ceiling})},
	}
	var missing []string
	for _, dir := range []string{"../../session", "../../vault", "../../kdf"} {
		for _, name := range exportedTypes(t, dir) {
			if _, ok := samples[name]; !ok && notFormatted[name] == "" {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("exported types the harness does not format (add a sample, or a reason to notFormatted): %q", missing)
	}
	names := make([]string, 0, len(samples))
	for n := range samples {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for i, val := range samples[n] {
			c.value(fmt.Sprintf("%s[%d]", n, i), val)
		}
	}

	// Errors of failing calls, each with secrets in its inputs.
	seenErrTypes := map[string]bool{}
	call := func(name string, f func() error) {
		t.Helper()
		c.call(name, func() error {
			err := f()
			walk(err, func(e error) { seenErrTypes[fmt.Sprintf("%T", e)] = true })
			return err
		})
	}
	other := memscan.NewMarker(40)
	c.all = append(c.all, other)
	wrong := other.Plain()
	call("vault.Open wrong passphrase", func() error {
		_, err := vault.Open(ctx, b, vaultOpts(wrong)...)
		return err
	})
	call("vault.RecoverHeader wrong passphrase", func() error {
		_, _, err := vault.RecoverHeader(ctx, b, false, vaultOpts(wrong)...)
		return err
	})
	call("vault.Create over an existing vault", func() error {
		_, err := vault.Create(ctx, b, vaultOpts(pass)...)
		return err
	})
	call("ChangePassphrase out of policy", func() error {
		return v.ChangePassphrase(ctx, wrong, kdf.Params{Time: 1 << 30, MemoryKiB: 1 << 31, Threads: 255})
	})
	call("AddPassphraseSlot out of policy", func() error {
		_, err := v.AddPassphraseSlot(ctx, wrong, kdf.Params{Time: 0, MemoryKiB: 0, Threads: 0})
		return err
	})
	call("kdf.Derive out of policy", func() error {
		_, err := kdf.Derive(wrong, kdf.NewSalt(), kdf.Params{Time: 1, MemoryKiB: 1, Threads: 1})
		return err
	})
	call("Store.Seal too large", func() error {
		big := make([]byte, 0, vault.MaxPlaintextSize+64)
		for len(big) < vault.MaxPlaintextSize+1 {
			big = ms.Access.AppendPlain(big)
		}
		defer memscan.Wipe(big)
		_, err := v.Store("big").Seal(ctx, big, backends.Any)
		return err
	})
	for i, bad := range hostileJSON(ms) {
		call(fmt.Sprintf("ParseSession hostile #%d", i), func() error {
			defer memscan.Wipe(bad)
			_, err := session.ParseSession(bad)
			return err
		})
	}
	// A save that the disk refuses: NotSavedError, StoreError, OpError.
	inj.set(true)
	call("UpdateTokens on a failing disk", func() error { return m.UpdateTokens(ctx, ms.tokens()) })
	call("UpdateCookies on a failing disk", func() error {
		return m.UpdateCookies(ctx, session.AuthCookies{Additional: map[string]session.Secret{"new": secret(ms.Cookie)}})
	})
	inj.set(false)
	// A request to a plain-http URL: URLError.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	call("Transport to plain http", func() error {
		req, _ := http.NewRequest("GET", strings.Replace(srv.URL, "127.0.0.1", "example.invalid", 1), nil)
		_, err := tr.RoundTrip(req)
		return err
	})
	call("WebSocketHeader plain ws", func() error {
		_, err := m.WebSocketHeader("ws://example.invalid/socket")
		return err
	})
	// A refresh that fails, with the refresh token in hand.
	m2, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true), session.WithLogger(logger),
		session.WithRefresher(func(ctx context.Context, rt session.Secret) (session.AuthTokens, *session.AuthCookies, error) {
			return session.AuthTokens{}, nil, fmt.Errorf("server says no to %v", rt)
		}))
	if err != nil {
		t.Fatal(err)
	}
	call("Refresh rejected", func() error { return m2.Refresh(ctx) })
	call("Logout with a failing revoke", func() error {
		return m2.Logout(ctx, func(ctx context.Context, rt session.Secret) error {
			return fmt.Errorf("revoke %v refused", rt)
		})
	})
	m2.Close(ctx)
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	call("UpdateTokens after Close", func() error { return m.UpdateTokens(ctx, ms.tokens()) })
	// A damaged sealed session: FormatError.
	sp := filepath.Join(dir, "sessions", sessionName+".sealed")
	blob, _ := os.ReadFile(sp)
	os.WriteFile(sp, blob[:len(blob)-1], 0o600)
	call("NewManager on a damaged session", func() error {
		_, err := session.NewManager(ctx, v.Store(sessionName), session.WithLogger(logger))
		return err
	})
	os.WriteFile(sp, blob, 0o600)

	c.check("the library's own log lines", logs.Bytes())
	var errTypes []string
	for k := range seenErrTypes {
		errTypes = append(errTypes, k)
	}
	sort.Strings(errTypes)
	t.Logf("error types seen: %v", errTypes)
	for _, want := range []string{"*session.LogoutError", "*session.RefreshError", "*session.DecodeError", "*session.NotSavedError", "*session.StoreError", "*session.URLError", "*vault.FormatError", "*vault.PolicyError", "*kdf.ParamError"} {
		if !seenErrTypes[want] {
			t.Errorf("no failing call produced a %s: the harness did not check it", want)
		}
	}
	memscan.Wipe(pass)
	memscan.Wipe(wrong)
	c.f.Report(t)
}

// TestSecretAsFieldName: a broken file that puts a secret where a field
// name belongs must not get it echoed. The session parser keeps a member
// it does not know; when its value is broken it reports the offset and
// the path of its object, never the key itself.
func TestSecretAsFieldName(t *testing.T) {
	m := memscan.NewMarker(40)
	doc := m.AppendPlain([]byte(`{"access_token":"a","refresh_token":"r","expires_at":null,"`))
	doc = append(doc, `":tru}`...)
	_, err := session.ParseSession(doc)
	memscan.Wipe(doc)
	if err == nil {
		t.Fatal("accepted an unknown member with a broken value")
	}
	if m.MatchesAny([]byte(err.Error())) {
		t.Errorf("the unknown key (a secret) is echoed in the error: %v", err)
	}
	// Not even a part of it: any 8 bytes of the marker.
	plain := m.Plain()
	defer memscan.Wipe(plain)
	msg := []byte(err.Error())
	for i := 0; i+8 <= len(plain); i++ {
		if bytes.Contains(msg, plain[i:i+8]) {
			t.Errorf("the error holds bytes %d-%d of the key", i, i+8)
			break
		}
	}
}

// hostileJSON returns session files with markers in them that the parser
// must refuse, each in its own buffer (wiped by the caller).
func hostileJSON(ms *markers) [][]byte {
	tok := func(prefix, suffix string) []byte {
		b := ms.Access.AppendPlain([]byte(prefix))
		return append(b, suffix...)
	}
	return [][]byte{
		tok(`{"access_token":"`, "\x01\",\"refresh_token\":\"r\",\"expires_at\":null}"), // control character after the secret
		tok(`{"access_token":"`, `\q","refresh_token":"r","expires_at":null}`),          // bad escape after the secret
		tok(`{"access_token":"`, `","refresh_token":5,"expires_at":null}`),              // wrong type after the secret
		tok(`{"access_token":"`, `","refresh_token":"r","expires_at":null,"x":tru}`),    // bad unknown member
		tok(`{"access_token":"`, ``),                                        // truncated inside the secret
		tok(`{"access_token":"a","refresh_token":"r","expires_at":"`, `"}`), // a secret where a time belongs
		tok(`{"tokens":{"access_token":"a","refresh_token":"r","expires_at":null},"cookies":{"auth_access_token":"`, `"}`), // truncated cookies
		tok(`{"tokens":{"access_token":"a","refresh_token":"r","expires_at":null},"cookies":{"additional_cookies":{"`, `":1}}}`),
		tok(`[`, `]`),
		tok(`"`, `"`),
	}
}

// failSwitch fails every write step with EIO while on.
type failSwitch struct{ on bool }

func (s *failSwitch) set(on bool) { s.on = on }

func (s *failSwitch) hook(ctx context.Context, st file.StepInfo) error {
	if s.on && st.Op == "put" && st.Step == file.StepWrite {
		return syscall.EIO
	}
	return nil
}
