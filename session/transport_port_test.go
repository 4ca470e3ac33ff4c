package session

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sessionvault/sessionvault/internal/figures"
)

// seenRequest is what a recording server received.
type seenRequest struct{ host, auth, cookie string }

// recordingServer is a real TLS server that records the Host, Authorization
// and Cookie of every request.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newRecordingServer(t *testing.T, l net.Listener) *recordingServer {
	return newRecordingServerWith(t, l, nil)
}

// newRecordingServerWith records each request, then hands it to next
// (nil: answers 200).
func newRecordingServerWith(t *testing.T, l net.Listener, next http.Handler) *recordingServer {
	t.Helper()
	r := &recordingServer{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, seenRequest{req.Host, req.Header.Get("Authorization"), req.Header.Get("Cookie")})
		r.mu.Unlock()
		if next != nil {
			next.ServeHTTP(w, req)
		}
	}))
	if l != nil {
		r.Listener.Close()
		r.Listener = l
	}
	r.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.StartTLS()
	t.Cleanup(r.Close)
	return r
}

func (r *recordingServer) last(t *testing.T) seenRequest {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("the server saw no request")
	}
	return r.seen[len(r.seen)-1]
}

// TestTransportMatchesHostAndPort: WithHosts matches host and port (443
// for https when the entry names none), WithAnyPort widens the entries
// without a port, and a Host field outside the list gets nothing, even on
// an allowed connection. Real TLS servers on real loopback ports.
func TestTransportMatchesHostAndPort(t *testing.T) {
	_, auth, _, ms := setupRefresh(t, 1)
	m := ms[0]
	if err := m.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	a, b := newRecordingServer(t, nil), newRecordingServer(t, nil)
	hostA := strings.TrimPrefix(a.URL, "https://")
	_, portA, _ := net.SplitHostPort(hostA)
	base := a.Client().Transport // trusts httptest's certificate, which both use
	cases := []struct {
		what     string
		opts     []TransportOption
		srv      *recordingServer
		reqHost  string
		attached bool
	}{
		{"no WithHosts: any host and port", nil, b, "", true},
		{"host without port, server on another port than 443", []TransportOption{WithHosts("127.0.0.1")}, a, "", false},
		{"host:port of the server", []TransportOption{WithHosts(hostA)}, a, "", true},
		{"host:port in upper case", []TransportOption{WithHosts(strings.ToUpper("LOCALHOST:1"), hostA)}, a, "", true},
		{"same host, another port", []TransportOption{WithHosts(hostA)}, b, "", false},
		{"host without port and WithAnyPort", []TransportOption{WithHosts("127.0.0.1"), WithAnyPort()}, b, "", true},
		{"WithAnyPort does not widen host:port entries", []TransportOption{WithHosts(hostA), WithAnyPort()}, b, "", false},
		{"req.Host outside the list", []TransportOption{WithHosts(hostA)}, a, "evil.example", false},
		{"req.Host outside the list, WithAnyPort", []TransportOption{WithHosts("127.0.0.1"), WithAnyPort()}, a, "evil.example:" + portA, false},
		{"req.Host in the list on the default port", []TransportOption{WithHosts(hostA, "api.axiom.trade")}, a, "api.axiom.trade", true},
		{"req.Host in the list on another port", []TransportOption{WithHosts(hostA, "api.axiom.trade")}, a, "api.axiom.trade:8443", false},
		{"req.Host the same as the URL", []TransportOption{WithHosts(hostA)}, a, hostA, true},
	}
	fig := figures.New("session/transport-port")
	fig.Declare("requests", "allowed", "credentialed", "credentialed_allowed", "mismatches")
	for _, c := range cases {
		refreshes := auth.calls.Load()
		cl := &http.Client{Transport: NewTransport(m, base, c.opts...)}
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, c.srv.URL+"/v1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = c.reqHost
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		resp.Body.Close()
		got := c.srv.last(t)
		sent := got.auth != "" || got.cookie != ""
		t.Logf("%-52s Host %-24s credentials: %v", c.what, got.host, sent)
		fig.Inc("requests")
		if c.attached {
			fig.Inc("allowed")
		}
		if sent {
			fig.Inc("credentialed")
			if c.attached {
				fig.Inc("credentialed_allowed")
			}
		}
		if sent != c.attached {
			fig.Inc("mismatches")
			t.Errorf("%s: credentials sent = %v, want %v (Host %q)", c.what, sent, c.attached, got.host)
		}
		if c.reqHost != "" && got.host != c.reqHost {
			t.Errorf("%s: server saw Host %q, want %q", c.what, got.host, c.reqHost)
		}
		if !c.attached && auth.calls.Load() != refreshes {
			t.Errorf("%s: a refresh for a request that carries nothing", c.what)
		}
	}
	fig.Report(t)
}

// TestTransportDefaultPort443: an entry without a port allows https on
// 443, and only there. It needs port 443 on 127.0.0.1 (root, and free).
func TestTransportDefaultPort443(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:443")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:443: %v", err)
	}
	_, _, _, ms := setupRefresh(t, 1)
	m := ms[0]
	if err := m.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	srv := newRecordingServer(t, l)
	if srv.URL != "https://127.0.0.1:443" {
		t.Fatalf("server URL %s", srv.URL)
	}
	fig := figures.New("session/transport-443")
	fig.Declare("cases", "mismatches")
	for _, c := range []struct {
		hosts    []string
		url      string
		attached bool
	}{
		{[]string{"127.0.0.1"}, "https://127.0.0.1/v1", true},
		{[]string{"127.0.0.1"}, "https://127.0.0.1:443/v1", true},
		{[]string{"127.0.0.1:443"}, "https://127.0.0.1/v1", true},
		{[]string{"127.0.0.1:8443"}, "https://127.0.0.1/v1", false},
	} {
		cl := &http.Client{Transport: NewTransport(m, srv.Client().Transport, WithHosts(c.hosts...))}
		resp, err := get(t, cl, c.url)
		if err != nil {
			t.Fatalf("%v %s: %v", c.hosts, c.url, err)
		}
		resp.Body.Close()
		fig.Inc("cases")
		if sent := srv.last(t).auth != ""; sent != c.attached {
			fig.Inc("mismatches")
			t.Errorf("WithHosts(%v), %s: credentials sent = %v, want %v", c.hosts, c.url, sent, c.attached)
		}
	}
	fig.Report(t)
}

// TestWebSocketMatchesPort: the WebSocket helpers apply the same rule.
func TestWebSocketMatchesPort(t *testing.T) {
	m, _ := wsManager(t)
	fig := figures.New("session/websocket-port")
	fig.Declare("cases", "mismatches")
	for _, c := range []struct {
		url   string
		hosts []string
		ok    bool
	}{
		{"wss://ws.axiom.trade/ws", []string{"ws.axiom.trade"}, true},
		{"wss://ws.axiom.trade:443/ws", []string{"ws.axiom.trade"}, true},
		{"wss://ws.axiom.trade:8443/ws", []string{"ws.axiom.trade"}, false},
		{"wss://ws.axiom.trade:8443/ws", []string{"ws.axiom.trade:8443"}, true},
		{"wss://[::1]:8443/ws", []string{"[::1]:8443"}, true},
		{"wss://[::1]/ws", []string{"::1"}, true},
	} {
		_, err := m.WebSocketHeader(c.url, WithHosts(c.hosts...))
		fig.Inc("cases")
		if (err == nil) != c.ok {
			fig.Inc("mismatches")
			t.Errorf("%s, WithHosts(%v): %v, want ok = %v", c.url, c.hosts, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureURL) {
			t.Errorf("%s: %v, want ErrInsecureURL", c.url, err)
		}
	}
	fig.Report(t)
}

// TestTransportRedirectToOtherPortDropsCredentials: a redirect to the same
// host on another port is another server: the credentials do not follow,
// even without WithHosts.
func TestTransportRedirectToOtherPortDropsCredentials(t *testing.T) {
	_, _, _, ms := setupRefresh(t, 1)
	m := ms[0]
	if err := m.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	second := newRecordingServer(t, nil)
	first := newRecordingServerWith(t, nil, http.RedirectHandler(second.URL+"/landing", http.StatusFound))
	c := &http.Client{Transport: NewTransport(m, first.Client().Transport)}
	resp, err := get(t, c, first.URL+"/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fig := figures.New("session/redirect-port")
	fig.Declare("first_credentialed", "followed")
	if got := first.last(t); got.auth == "" {
		t.Error("the first server got no credentials: the test proves nothing")
	} else {
		fig.Inc("first_credentialed")
	}
	got := second.last(t)
	if got.auth != "" || got.cookie != "" {
		fig.Inc("followed")
	}
	fig.Report(t)
	if got.auth != "" || got.cookie != "" {
		t.Errorf("credentials followed a redirect from %s to %s", first.URL, second.URL)
	}
}
