package apicheck

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/backends/keyring"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/backends/tpm"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// TestNilOptionsIgnored passes a nil option to every constructor of the
// public packages that takes options, as their Option types' docs say is
// allowed: none panics, and each does what it does without the nil.
func TestNilOptionsIgnored(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")

	fb, err := file.New(dir, nil)
	if err != nil {
		t.Fatalf("file.New with a nil Option: %v", err)
	}
	defer fb.Close()
	mb := memory.New(nil)
	v, err := vault.Create(ctx, mb, nil, vault.WithPassphrase([]byte("nil options")), vault.WithInsecureKDFForTesting(), nil)
	if err != nil {
		t.Fatalf("vault.Create with nil Options: %v", err)
	}
	defer v.Close()
	m, err := session.NewManager(ctx, v.Store("s"), nil)
	if err != nil {
		t.Fatalf("session.NewManager with a nil Option: %v", err)
	}
	defer m.Close(ctx)
	if tr := session.NewTransport(m, http.DefaultTransport, nil); tr == nil {
		t.Fatal("session.NewTransport with a nil TransportOption returned nil")
	}
	if _, err := m.WebSocketHeader("wss://api.example/ws", nil); !errors.Is(err, session.ErrNotAuthenticated) {
		t.Errorf("WebSocketHeader with a nil TransportOption and no session: %v, want ErrNotAuthenticated", err)
	}
	if _, err := keychain.New(nil); err != nil {
		t.Errorf("keychain.New with a nil Option: %v", err)
	}
	if _, err := tpm.New("", nil); err != nil {
		t.Errorf("tpm.New with a nil Option: %v", err)
	}
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // New does no I/O
	defer client.Close()
	if _, err := redis.New(client, nil); err != nil {
		t.Errorf("redis.New with a nil Option: %v", err)
	}
	// An invalid Config, so that Open fails before it touches a keychain.
	if _, err := keyring.Open(ctx, keyring.Config{}, nil); !errors.Is(err, keyring.ErrInvalidConfig) {
		t.Errorf("keyring.Open with a nil Option and no backend: %v, want ErrInvalidConfig", err)
	}
}
