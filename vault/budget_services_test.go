package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/servicetest"
	"github.com/sessionvault/sessionvault/kdf"
)

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestKDFBudgetRedis: the forged four-slot ceiling header, stored in a
// real Redis, is refused before any derivation, in milliseconds, without
// allocating in proportion to its claim. Run under scripts/with-redis.
func TestKDFBudgetRedis(t *testing.T) {
	servicetest.Require(t, "SESSIONVAULT_REDIS_URL", "Redis", "scripts/with-redis")
	ctx := context.Background()
	b, err := redis.NewFromURL(ctx, os.Getenv("SESSIONVAULT_REDIS_URL"), redis.WithPrefix("vault-budget-test-"+randomSuffix()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := Create(ctx, b, cheap(testPass)...)
	if err != nil {
		t.Fatal(err)
	}
	seal(t, v, "main", "plaintext")
	v.Close()
	defer func() {
		b.Delete(ctx, "main", backends.Any)
		b.Delete(ctx, backends.HeaderName, backends.Any)
	}()
	rewriteSlots(t, b, false, nil, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling, kdf.Ceiling)

	n := kdf.Derivations()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	_, err = Open(ctx, b, WithPassphrase([]byte(testPass)))
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	t.Logf("redis: refused in %v, %d KiB allocated: %v", elapsed.Round(time.Microsecond), (ms1.TotalAlloc-ms0.TotalAlloc)>>10, err)
	fig := figures.New("vault/kdf-budget-redis")
	fig.Add("derivations", int64(kdf.Derivations()-n))
	fig.Add("alloc_kib", int64((ms1.TotalAlloc-ms0.TotalAlloc)>>10))
	fig.Add("micros", elapsed.Microseconds())
	fig.Report(t)
	wantBudgetRefusal(t, err, "forged header in Redis")
	if kdf.Derivations() != n {
		t.Fatal("a derivation ran before the refusal")
	}
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 1<<20 {
		t.Errorf("%d KiB allocated before the refusal", a>>10)
	}
	if elapsed > 500*time.Millisecond {
		t.Errorf("refused after %v", elapsed)
	}
}

// TestKDFBudgetSecretService: with a real Secret Service as the key store,
// a passphrase and forged costly passphrase slots, the unlock is refused
// before the keychain is asked; with the keychain alone, the real keychain
// slot opens the vault and nothing is derived. Run under
// scripts/with-keyring.
func TestKDFBudgetSecretService(t *testing.T) {
	servicetest.Require(t, "SESSIONVAULT_SECRET_SERVICE", "Secret Service", "scripts/with-keyring")
	kc, err := keychain.New(keychain.WithService("sessionvault-vault-budget-test-" + randomSuffix()))
	if err != nil {
		t.Fatal(err)
	}
	checkKeychainPath(t, kc, "vault/kdf-budget-secret-service")
}
