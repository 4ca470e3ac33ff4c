package session

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsServer accepts a WebSocket only with the session's bearer token and
// auth cookie (or, at /query, the token in the query), then echoes.
func wsServer(t *testing.T, tls bool) (string, *http.Client) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := r.Header.Get("Authorization") == "Bearer acc" && strings.Contains(r.Header.Get("Cookie"), "auth-access-token=ca")
		if r.URL.Path == "/query" {
			ok = r.URL.Query().Get("token") == "acc"
		}
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, append([]byte("echo "), msg...))
		c.Close(websocket.StatusNormalClosure, "")
	})
	s := quietServer(h, tls)
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	u.Scheme = "ws"
	if tls {
		u.Scheme = "wss"
	}
	return u.String(), s.Client()
}

func wsManager(t *testing.T) (*Manager, *clock) {
	clk := newClock(t0)
	m := newTestManager(t, newTestStore(t), WithClock(clk.now), seedBuffers())
	exp := t0.Add(time.Hour)
	tok := tokens("acc", "ref", &exp)
	defer tok.Destroy()
	if err := m.CreateSession(ctxT(t), tok, nil, authCookies("ca", "cr")); err != nil {
		t.Fatal(err)
	}
	return m, clk
}

func echo(t *testing.T, client *http.Client, u string, h http.Header) error {
	t.Helper()
	c, _, err := websocket.Dial(ctxT(t), u, &websocket.DialOptions{HTTPClient: client, HTTPHeader: h})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if err := c.Write(ctxT(t), websocket.MessageText, []byte("hi")); err != nil {
		return err
	}
	_, msg, err := c.Read(ctxT(t))
	if err != nil {
		return err
	}
	if string(msg) != "echo hi" {
		t.Errorf("got %q", msg)
	}
	return nil
}

func TestWebSocketHandshake(t *testing.T) {
	m, clk := wsManager(t)
	u, client := wsServer(t, true)
	u += "/ws"
	h, err := m.WebSocketHeader(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(t, client, u, h); err != nil {
		t.Fatalf("handshake with the session's headers: %v", err)
	}
	if err := echo(t, client, u, nil); err == nil {
		t.Error("server accepted a handshake without credentials")
	}
	// The URL form, for servers that need it.
	qu, err := m.WebSocketURLWithToken(strings.Replace(u, "/ws", "/query", 1), "token")
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(t, client, qu, nil); err != nil {
		t.Fatalf("handshake with the token in the URL: %v", err)
	}
	// An invalid session is refused before any dial.
	clk.advance(55 * time.Minute)
	if _, err := m.WebSocketHeader(u); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired session: %v", err)
	}
	if _, err := m.WebSocketURLWithToken(u, "token"); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired session, URL form: %v", err)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	m, _ := wsManager(t)
	plain, client := wsServer(t, false)
	plain += "/ws"
	if _, err := m.WebSocketHeader(plain); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("ws:// to loopback without opt-in: %v", err)
	}
	if _, err := m.WebSocketHeader("ws://example.com/ws"); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("ws:// remote: %v", err)
	}
	if _, err := m.WebSocketHeader("wss://other.example/ws", WithHosts("ws.axiom.trade")); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("host outside WithHosts: %v", err)
	}
	h, err := m.WebSocketHeader(plain, WithInsecureLoopback())
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(t, client, plain, h); err != nil {
		t.Errorf("ws:// loopback with opt-in: %v", err)
	}
	// Without both auth cookies the session is invalid.
	noCookies := newTestManager(t, newTestStore(t))
	tok := tokens("acc", "ref", nil)
	defer tok.Destroy()
	noCookies.CreateSession(ctxT(t), tok, nil, nil)
	if _, err := noCookies.WebSocketHeader("wss://ws.axiom.trade"); !errors.Is(err, ErrNotAuthenticated) {
		t.Errorf("no auth cookies: %v", err)
	}
	empty := newTestManager(t, newTestStore(t))
	if _, err := empty.WebSocketHeader("wss://ws.axiom.trade"); !errors.Is(err, ErrNotAuthenticated) {
		t.Errorf("no session: %v", err)
	}
}
