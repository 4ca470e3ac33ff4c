package keychain

import (
	"context"
	"testing"

	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/vault"
)

// A vault made with a Keychain records the keychain's service name in its
// keychain slot (vault.ServiceNamer), and a Keychain for that service opens
// it again.
func TestVaultRecordsService(t *testing.T) {
	requireSecretService(t)
	ctx := t.Context()
	const svc = "sessionvault-test-svc"
	k := newTestKeychain(t, WithService(svc))
	if got := k.Service(); got != svc {
		t.Fatalf("Service() = %q, want %q", got, svc)
	}
	if got := newTestKeychain(t).Service(); got != Service {
		t.Fatalf("default Service() = %q, want %q", got, Service)
	}
	b := memory.New()
	v, err := vault.Create(ctx, b, vault.WithKeyStore(k))
	if err != nil {
		t.Fatal(err)
	}
	var account string
	for _, s := range v.Info().Slots {
		if s.Kind == vault.KeychainSlot {
			account = s.Account
			if s.Service != svc {
				t.Errorf("slot records service %q, want %q", s.Service, svc)
			}
		}
	}
	if account == "" {
		t.Fatal("no keychain slot")
	}
	t.Cleanup(func() { _ = k.DeleteKey(context.Background(), account) })
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2, err := vault.Open(ctx, b, vault.WithKeyStore(newTestKeychain(t, WithService(svc))))
	if err != nil {
		t.Fatalf("Open with the recorded service: %v", err)
	}
	_ = v2.Close()
}
