package redis

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

func itoa(n int) string { return strconv.Itoa(n) }

func testTLSConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS10} }

// TestTLSConfigOption: the option clones the config and raises MinVersion.
func TestTLSConfigOption(t *testing.T) {
	in := &tls.Config{MinVersion: tls.VersionTLS10, ServerName: "redis.example"}
	var c config
	if err := WithTLSConfig(in)(&c); err != nil {
		t.Fatal(err)
	}
	if c.tlsConfig == in {
		t.Fatal("WithTLSConfig kept the caller's *tls.Config")
	}
	if c.tlsConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %x, want TLS 1.2", c.tlsConfig.MinVersion)
	}
	if in.MinVersion != tls.VersionTLS10 {
		t.Fatal("WithTLSConfig changed the caller's config")
	}
	if err := WithTLSConfig(nil)(&c); err == nil {
		t.Fatal("WithTLSConfig(nil) accepted")
	}
	in13 := &tls.Config{MinVersion: tls.VersionTLS13}
	WithTLSConfig(in13)(&c)
	if c.tlsConfig.MinVersion != tls.VersionTLS13 {
		t.Fatal("WithTLSConfig lowered MinVersion")
	}
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 in dir.
func writeCerts(t *testing.T, dir string) (caPool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sessionvault test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", "CERTIFICATE", caDER)
	write("server.crt", "CERTIFICATE", srvDER)
	write("server.key", "EC PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

// TestTLS runs a TLS-only redis-server with a test CA: the backend works
// with the CA, refuses the server without it (not as a transient error),
// and a plain-text client gets nowhere.
func TestTLS(t *testing.T) {
	redisURL(t) // run with the other server tests
	certs := t.TempDir()
	pool := writeCerts(t, certs)
	srv := startServer(t, "--tls-port", "0",
		"--tls-cert-file", filepath.Join(certs, "server.crt"),
		"--tls-key-file", filepath.Join(certs, "server.key"),
		"--tls-ca-cert-file", filepath.Join(certs, "ca.crt"),
		"--tls-auth-clients", "no")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := NewFromURL(ctx, srv.url(), WithTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatalf("NewFromURL over TLS: %v", err)
	}
	defer b.Close()
	v, err := b.Put(ctx, "tls", []byte("sealed"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if got, gv, err := b.Get(ctx, "tls"); err != nil || string(got) != "sealed" || gv != v {
		t.Fatalf("Get over TLS = %q, %q, %v", got, gv, err)
	}

	// rediss:// uses the system roots, which do not know the test CA.
	_, err = NewFromURL(ctx, "rediss://"+srv.addr()+"/0")
	if err == nil {
		t.Fatal("rediss:// with an unknown CA connected")
	}
	var uerr x509.UnknownAuthorityError
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &uerr) && !errors.As(err, &verr) {
		t.Errorf("unknown CA: %v, want a certificate verification error", err)
	}
	if errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("unknown CA: %v matches ErrUnavailable; a bad certificate is not transient", err)
	}
	// The right CA but another name: refused too.
	_, err = NewFromURL(ctx, srv.url(), WithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "other.example"}))
	if err == nil || errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("wrong server name: %v, want a non-transient verification error", err)
	}
	// Plain text to the TLS port: no connection.
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := NewFromURL(pctx, srv.url()); err == nil {
		t.Error("plain-text client talked to the TLS-only server")
	}
}
