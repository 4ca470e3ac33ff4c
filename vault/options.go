package vault

import (
	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
)

// Option configures Create and Open.
//
// A nil Option is ignored.
type Option func(*config)

type config struct {
	pass      *secmem.Buffer // nil: no passphrase
	params    kdf.Params
	paramsSet bool
	keyStore  backends.KeyStore
	sealer    KEKSealer
	policy    kdf.Policy
	insecure  bool
	passErr   error
	freshness string // WithFreshnessFile (rollback.go)
}

// insecureTestParams are the argon2id parameters WithInsecureKDFForTesting
// gives Create: one pass over 64 KiB, microseconds.
var insecureTestParams = kdf.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// WithPassphrase unlocks (Open) or protects (Create) the vault with a
// passphrase slot. Create and Open copy the passphrase into locked memory
// when they apply the option, so the caller may wipe its slice as soon as
// they return. The Vault keeps its copy until Close, to re-wrap the keys
// of the passphrase's slot during RotateKey without asking again.
func WithPassphrase(passphrase []byte) Option {
	return func(c *config) {
		c.pass.Destroy()
		c.pass = secmem.New(len(passphrase))
		copy(c.pass.Bytes(), passphrase)
		if len(passphrase) == 0 {
			c.passErr = errEmptyPassphrase
		}
	}
}

// WithKDFParams sets the argon2id parameters of the passphrase slot that
// Create makes (default kdf.Default). They must be within the KDF policy.
func WithKDFParams(p kdf.Params) Option {
	return func(c *config) { c.params, c.paramsSet = p, true }
}

// WithKeyStore gives the vault an OS keychain. Create adds a keychain slot
// whose random key-encryption key it stores there; Open tries the
// vault's keychain slots first, before any passphrase.
func WithKeyStore(ks backends.KeyStore) Option {
	return func(c *config) { c.keyStore = ks }
}

// WithKDFPolicy sets the argon2id policy (default kdf.DefaultPolicy). Open
// refuses a header whose passphrase slots are outside it, or together cost
// more than its kdf.Budget when a passphrase is given, before any
// derivation; Create, ChangePassphrase and AddPassphraseSlot refuse
// parameters outside it and headers over its budget. Use it to raise the
// ceiling (kdf.DefaultPolicy.WithCeiling) or the budget
// (kdf.DefaultPolicy.WithBudget) for vaults made with costlier
// parameters.
func WithKDFPolicy(p kdf.Policy) Option {
	return func(c *config) { c.policy = p }
}

// WithInsecureKDFForTesting makes passphrase slots cheap to derive, for
// tests: it sets kdf.InsecurePolicyForTesting and, unless WithKDFParams is
// also given, makes Create use one argon2id pass over 64 KiB. A vault made
// with it falls to a brute-force search in no time, and Open without this
// option (or the same policy) refuses it as out of policy. Production code
// must never pass it.
func WithInsecureKDFForTesting() Option {
	return func(c *config) {
		c.policy = kdf.InsecurePolicyForTesting
		c.insecure = true
	}
}

func newConfig(opts []Option) *config {
	c := &config{policy: kdf.DefaultPolicy}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(c)
		}
	}
	if !c.paramsSet {
		c.params = kdf.Default
		if c.insecure {
			c.params = insecureTestParams
		}
	}
	return c
}
