package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/backends/tpm"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// where describes the vault's location for messages: the folder, or the
// Redis key prefix (never the Redis URL, which may hold a password).
func (a *app) where() string {
	if a.backend == "redis" {
		if a.redisPrefix == "" {
			return "redis prefix " + redis.DefaultPrefix
		}
		return "redis prefix " + a.redisPrefix
	}
	return a.dir
}

// resolveDir fills in a.dir from the environment when --dir was not given.
// The path is made absolute, so that messages and --json name the
// folder unambiguously.
func (a *app) resolveDir() error {
	d := a.dir
	if d == "" {
		var err error
		if d, err = defaultDir(a.getenv); err != nil {
			return err
		}
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return err
	}
	a.dir = abs
	return nil
}

// openBackend opens the storage. With create false, a vault folder that
// does not exist is "not found" (exit 3): status must not create an empty
// folder where the operator mistyped a path.
func (a *app) openBackend(ctx context.Context, create bool) (b backends.Backend, err error) {
	defer func() {
		if b != nil {
			// Closed when the command ends (run), after the vault.
			a.backends = append(a.backends, b)
		}
	}()
	if a.backend == "redis" {
		var opts []redis.Option
		if a.redisPrefix != "" {
			opts = append(opts, redis.WithPrefix(a.redisPrefix))
		}
		rb, err := redis.NewFromURL(ctx, a.redisURL, opts...)
		if err != nil {
			// A refused password is not an unsafe file mode: exit 1.
			return nil, &codedError{err: withHint(err, "check --redis-url and that the server is up"), code: exitError}
		}
		return rb, nil
	}
	if err := a.resolveDir(); err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Lstat(a.dir); errors.Is(err, fs.ErrNotExist) || holdsNothing(a.dir) {
			// Also before any permission check: a folder with nothing in
			// it is "no vault", whatever its mode, and a read-only
			// command must not make the backend's subfolders in it.
			return nil, withHint(notFoundf("no vault in %s", a.dir), "run 'vaultctl init' first, or pass --dir")
		}
	} else if parent := filepath.Dir(a.dir); parent != a.dir {
		// The data folder itself may not exist yet on a new account
		// (~/.local/share). Create what leads to the vault folder, private.
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	fb, err := file.New(a.dir)
	if err != nil {
		if create {
			return nil, err
		}
		return nil, a.explain(err)
	}
	return fb, nil
}

// keyStore returns the OS keychain as a KeyStore whose errors are marked
// as keychain errors (exit 6) and whose calls end after keychainTimeout
// (an unlock prompt that nobody answers must not hang a script). Its
// service is --keychain-service, else the one the vault records, else
// keychain.Service; it names it (vault.ServiceNamer), so that a keychain
// slot it makes records it.
func (a *app) keyStore() (backends.KeyStore, error) {
	svc := a.keychainService
	if svc == "" {
		svc = a.recordedService
	}
	return a.keyStoreFor(svc)
}

// keyStoreFor is keyStore for the service svc ("" for keychain.Service).
func (a *app) keyStoreFor(svc string) (backends.KeyStore, error) {
	if svc == "" {
		svc = keychain.Service
	}
	ks, err := keychain.New(keychain.WithTimeout(keychainTimeout), keychain.WithService(svc))
	if err != nil {
		if svc == a.keychainService {
			return nil, usagef("--keychain-service: %v", err)
		}
		return nil, &keychainError{err: err}
	}
	return &cliKeyStore{ks: ks, service: svc}, nil
}

type cliKeyStore struct {
	ks      backends.KeyStore
	service string
}

// Service names the keychain service, for the slots the vault records.
func (k *cliKeyStore) Service() string { return k.service }

func (k *cliKeyStore) wrap(err error) error {
	if err == nil {
		return nil
	}
	return &keychainError{err: err}
}

func (k *cliKeyStore) GetKey(ctx context.Context, account string) ([]byte, error) {
	b, err := k.ks.GetKey(ctx, account)
	return b, k.wrap(err)
}

func (k *cliKeyStore) PutKey(ctx context.Context, account string, key []byte) error {
	return k.wrap(k.ks.PutKey(ctx, account, key))
}

func (k *cliKeyStore) DeleteKey(ctx context.Context, account string) error {
	return k.wrap(k.ks.DeleteKey(ctx, account))
}

// unlockOptions returns the options that unlock the vault: the keychain
// with --keychain, and a passphrase unless --keychain was given without
// any passphrase source. The returned wipe function clears the
// passphrase; call it once Open returns (vault.WithPassphrase copies).
func (a *app) unlockOptions(ctx context.Context) ([]vault.Option, func(), error) {
	opts := a.policyOptions()
	wipe := func() {}
	if a.freshness != "" {
		opts = append(opts, vault.WithFreshnessFile(a.freshness))
	}
	if a.keychain {
		ks, err := a.keyStore()
		if err != nil {
			return nil, wipe, err
		}
		opts = append(opts, vault.WithKeyStore(ks))
	}
	if a.tpm {
		s, err := a.sealer(nil)
		if err != nil {
			return nil, wipe, err
		}
		opts = append(opts, vault.WithTPM(s))
	}
	if !(a.keychain || a.tpm) || a.pass.explicit() {
		p, err := a.pass.get(ctx, "Passphrase for "+a.where()+": ", false)
		if err == errNoTerminal {
			return nil, wipe, usagef("%s, or --keychain or --tpm if the vault opens with the OS keychain or the TPM", errNoTerminal.msg)
		}
		if err != nil {
			return nil, wipe, err
		}
		opts = append(opts, vault.WithPassphrase(p))
		wipe = func() { secmem.Wipe(p) }
	}
	return opts, wipe, nil
}

// openVault opens the backend and unlocks the vault: one KDF run.
func (a *app) openVault(ctx context.Context) (*vault.Vault, error) {
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	return a.unlock(ctx, b)
}

// unlock opens the vault in b with the key sources given, or, when none
// is given, with those the vault's header names (autoKeySources).
func (a *app) unlock(ctx context.Context, b backends.Backend) (*vault.Vault, error) {
	// One read of the header, without any key, tells both which
	// keychain service it records and which key sources it has.
	in, inErr := vault.Inspect(ctx, b, a.policyOptions()...)
	if inErr == nil { // otherwise Open reports it
		a.recordService(in)
	}
	auto, hasPass := a.autoKeySources(in, inErr)
	opts, wipe, err := a.unlockOptions(ctx)
	if err != nil {
		return nil, err
	}
	v, err := vault.Open(ctx, b, opts...)
	wipe()
	if err != nil && auto && hasPass {
		// The keychain or TPM the header names did not open it: ask
		// for the passphrase, if there is a terminal to ask on.
		a.keychain, a.tpm = false, false
		if opts, wipe, perr := a.unlockOptions(ctx); perr == nil {
			v, err = vault.Open(ctx, b, opts...)
			wipe()
		}
	}
	if err != nil {
		return nil, a.explain(err)
	}
	return v, nil
}

// recordService takes the keychain service the vault's first keychain
// slot records (header version 3, read by vault.Inspect without any key)
// into a.recordedService:
// the key to unlock with is then looked up there unless
// --keychain-service says otherwise. The name is authenticated by the
// header, but only once a slot opens; until then it decides only which
// entry of this user's keychain is read, which is harmless (see
// SECURITY.md, "A vault records its key sources").
func (a *app) recordService(in vault.Info) {
	if a.keychainService != "" {
		return
	}
	for _, s := range in.Slots {
		if s.Kind == vault.KeychainSlot && s.Service != "" {
			a.recordedService = s.Service
			return
		}
	}
}

// autoKeySources: when no key source is given (no --keychain, --tpm or
// passphrase source), the vault's header says which it has (vault.Inspect,
// no key needed), and its keychain and TPM slots are tried as if
// --keychain and --tpm had been given. It reports whether it did, and
// whether the vault has a passphrase slot to fall back on.
func (a *app) autoKeySources(in vault.Info, inErr error) (auto, hasPass bool) {
	if a.keychain || a.tpm || a.pass.explicit() || inErr != nil {
		return false, false
	}
	for _, s := range in.Slots {
		switch s.Kind {
		case vault.KeychainSlot:
			a.keychain, auto = true, true
		case vault.TPMSlot:
			a.tpm, auto = true, true
		case vault.PassphraseSlot:
			hasPass = true
		}
	}
	return auto, hasPass && a.openTerminal != nil
}

// explain adds the operator's next step to an error from the library.
func (a *app) explain(err error) error {
	var ke *keychainError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backends.ErrPermission):
		// The backend's message names the path and the chmod to run.
		return err
	case errors.As(err, &ke) && errors.Is(err, tpm.ErrUnavailable) && !errors.Is(err, vault.ErrWrongKey):
		return withHint(err, "no TPM at "+a.tpmDevice()+": check --tpm-device or $"+tpmDeviceEnv+", or unlock with the passphrase")
	case errors.As(err, &ke):
		return withHint(err, "unlock the keychain (or start the Secret Service), or unlock with the passphrase instead of --keychain")
	case errors.Is(err, vault.ErrWrongKey):
		if h := tpmHint(err); a.tpm && h != "" {
			return &msgError{msg: "the TPM slot does not open the vault in " + a.where() + " and no passphrase given does: " + h + "; nothing was changed", err: err}
		}
		if a.tpm {
			return &msgError{msg: "neither the TPM nor a passphrase given opens the vault in " + a.where() +
				": check the passphrase and --tpm-device; nothing was changed", err: err}
		}
		if a.keychain {
			return &msgError{msg: "neither the keychain key nor a passphrase given opens the vault in " + a.where() +
				": check the passphrase, or unlock the keychain that holds this vault's key; nothing was changed", err: err}
		}
		return &msgError{msg: "wrong passphrase for the vault in " + a.where() + ": check it and try again; nothing was changed", err: err}
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, backends.ErrNotFound):
		return withHint(&msgError{msg: "no vault in " + a.where(), err: err}, "run 'vaultctl init' first, or pass --dir")
	case errors.Is(err, vault.ErrUnsupportedVersion):
		return withHint(err, "written by a newer vaultctl, or damaged: upgrade vaultctl or run 'vaultctl verify'")
	case errors.Is(err, vault.ErrCorrupt):
		var fe *vault.FormatError
		if errors.As(err, &fe) && fe.Structure == "session" {
			return withHint(err, "run 'vaultctl verify --recover' to restore the session's previous generation")
		}
		return withHint(err, "the vault header is damaged or was tampered with: run 'vaultctl verify --recover' to restore its previous generation, or restore it from a backup")
	case errors.Is(err, kdf.ErrOverBudget):
		return withHint(err, kdfCostHint(err))
	case errors.Is(err, vault.ErrPolicy):
		return withHint(err, "the vault header is damaged or was tampered with: restore it from a backup")
	}
	return err
}
