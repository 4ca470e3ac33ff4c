package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// kdfFlags are the argon2id parameters for a new passphrase slot.
type kdfFlags struct {
	time, memMiB, threads uint
}

func (k *kdfFlags) register(fs *flag.FlagSet) {
	fs.UintVar(&k.time, "kdf-time", uint(kdf.Default.Time), "argon2id passes `t` for the new passphrase slot")
	fs.UintVar(&k.memMiB, "kdf-memory", uint(kdf.Default.MemoryKiB/1024), "argon2id memory in `MiB` for the new passphrase slot")
	fs.UintVar(&k.threads, "kdf-threads", uint(kdf.Default.Threads), "argon2id lanes `p` for the new passphrase slot")
}

// params returns the parameters, refused (usage error) below the floor
// or above the ceiling of the default policy, or when one slot alone costs
// more than pol's budget (--allow-kdf-cost).
func (k *kdfFlags) params(pol kdf.Policy) (kdf.Params, error) {
	if k.time > 1<<20 || k.memMiB > 1<<20 || k.threads > 255 {
		return kdf.Params{}, usagef("--kdf-*: value out of range")
	}
	p := kdf.Params{Time: uint32(k.time), MemoryKiB: uint32(k.memMiB) * 1024, Threads: uint8(k.threads)}
	if err := kdf.DefaultPolicy.Check(p); err != nil {
		return kdf.Params{}, usagef("%v: the floor is %v, the ceiling %v", err, kdf.Floor, kdf.Ceiling)
	}
	if err := pol.CheckBudget([]kdf.Params{p}); err != nil {
		return kdf.Params{}, usagef("%v: choose cheaper --kdf-* values, or allow it with %s (every open of the vault then needs it too)", err, kdfCostAllow(err))
	}
	return p, nil
}

var cmdInit = &command{
	name:    "init",
	summary: "create a vault",
	help: `Creates a vault in the vault folder (or under the Redis prefix). Key slots:

  a passphrase slot when a passphrase is given (--passphrase-file,
  --passphrase-fd, $VAULTCTL_PASSPHRASE, or asked twice on the terminal
  when no other slot is asked for);
  a keychain slot with --keychain-slot (a random key kept in the OS
  keychain, under the service --keychain-service names);
  a TPM slot with --tpm-slot (a random key sealed to the TPM at
  --tpm-device, bound with --tpm-pcrs to the current values of those
  SHA-256 PCRs);
  several when several are given: each then opens the vault, so losing
  the keychain or the TPM loses nothing while the passphrase is kept.

The global --keychain and --tpm, which elsewhere say how to unlock, mean
--keychain-slot and --tpm-slot here: a new vault has nothing to unlock.
An existing vault is never overwritten.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		var kf kdfFlags
		kf.register(fs)
		var tf tpmFlags
		tf.register(fs, "make a TPM slot: a key sealed to the TPM (--tpm-device)")
		var kcSlot bool
		fs.BoolVar(&kcSlot, "keychain-slot", false, "make a keychain slot: a random key kept in the OS keychain")
		var generate bool
		fs.BoolVar(&generate, "generate-passphrase", false, "generate a strong passphrase and print it once on stderr, as age -p does")
		return func(ctx context.Context, a *app, _ []string) error {
			a.generate = generate
			params, err := kf.params(a.kdfPolicy)
			if err != nil {
				return err
			}
			pcrs, err := parsePCRs(tf.pcrs)
			if err != nil {
				return err
			}
			a.keychain = a.keychain || kcSlot
			return a.initVault(ctx, params, tf.tpm || a.tpm, pcrs)
		}
	},
}

// tpmFlags are --tpm-slot and --tpm-pcrs of init, passwd and rotate-key.
type tpmFlags struct {
	tpm  bool
	pcrs string
}

func (t *tpmFlags) register(fs *flag.FlagSet, usage string) {
	fs.BoolVar(&t.tpm, "tpm-slot", false, usage)
	fs.StringVar(&t.pcrs, "tpm-pcrs", "", "seal the new TPM slot to the current values of these SHA-256 `PCRS` (such as 7, or 0,2,7)")
}

func (a *app) initVault(ctx context.Context, params kdf.Params, withTPM bool, pcrs []int) error {
	opts := append(a.policyOptions(), vault.WithKDFParams(params))
	if a.freshness != "" {
		opts = append(opts, vault.WithFreshnessFile(a.freshness))
	}
	if a.keychain {
		ks, err := a.keyStore()
		if err != nil {
			return err
		}
		opts = append(opts, vault.WithKeyStore(ks))
	}
	if withTPM {
		s, err := a.sealer(pcrs)
		if err != nil {
			return err
		}
		opts = append(opts, vault.WithTPM(s))
	} else if len(pcrs) > 0 {
		return usagef("--tpm-pcrs needs --tpm-slot (or --tpm)")
	}
	hasPass := false
	switch {
	case a.generate:
		if a.pass.explicit() {
			return usagef("--generate-passphrase and a passphrase source both given: use one")
		}
		hasPass = true
		p := generatePassphrase()
		defer secmem.Wipe(p)
		opts = append(opts, vault.WithPassphrase(p))
		defer func() {
			if a.created {
				fmt.Fprintf(a.stderr, "vaultctl: the vault's passphrase, shown this once (keep it somewhere safe): %s\n", p)
			}
		}()
	case !(a.keychain || withTPM) || a.pass.explicit():
		hasPass = true
		p, err := a.pass.get(ctx, "New passphrase for "+a.whereForPrompt()+": ", true)
		if err != nil {
			return err
		}
		defer secmem.Wipe(p)
		if w := weakPassphrase(p); w != "" {
			fmt.Fprintf(a.stderr, "vaultctl: warning: weak passphrase: %s; argon2id slows each guess, it cannot make a guessable passphrase safe (--generate-passphrase makes a strong one)\n", w)
		}
		opts = append(opts, vault.WithPassphrase(p))
	}
	fresh := false
	if a.backend == "file" {
		if err := a.resolveDir(); err != nil {
			return err
		}
		_, err := os.Lstat(a.dir)
		fresh = errors.Is(err, fs.ErrNotExist)
	}
	b, err := a.openBackend(ctx, true)
	if err != nil {
		return err
	}
	v, err := vault.Create(ctx, b, opts...)
	if err != nil {
		if fresh {
			// Leave no empty vault folder behind a failed init (the
			// keychain was away, say): remove what the backend made,
			// which is empty (os.Remove refuses anything else).
			b.Close()
			for _, p := range []string{"locks/.write.lock", "locks", "sessions", "."} {
				_ = os.Remove(filepath.Join(a.dir, p))
			}
		}
		if errors.Is(err, vault.ErrExists) {
			return withHint(fmt.Errorf("a vault already exists in %s: %w", a.where(), err), "nothing was changed; use another --dir")
		}
		return a.explain(err)
	}
	defer v.Close()
	a.created = true
	if withTPM && !hasPass {
		fmt.Fprintf(a.stderr, "vaultctl: warning: the vault opens only with this machine's TPM%s: add a recovery passphrase (vaultctl --tpm passwd --new-passphrase-file FILE) and keep it off this machine\n", map[bool]string{true: " or the keychain", false: ""}[a.keychain])
	}
	info := vaultDoc(v)
	return a.emit(map[string]any{"created": true, "location": a.where(), "vault": info}, func(w io.Writer) {
		fmt.Fprintf(w, "created vault %s in %s\n", info.ID, a.where())
		printVault(w, info)
	})
}

// whereForPrompt resolves the folder early so the prompt can name it.
func (a *app) whereForPrompt() string {
	if a.backend != "redis" {
		_ = a.resolveDir()
	}
	return a.where()
}

// slotFlags are rotate-key's and passwd's --keychain-slot /
// --passphrase-slot: the key sources the vault should have afterwards.
// Neither keeps the current ones; one alone moves the vault to that
// source; both keep or add both. (The global --keychain and --tpm say
// how to unlock; the slot flags have other names so that no flag means
// one thing before the command and another after it.)
type slotFlags struct {
	keychain, passphrase bool
	tpm                  tpmFlags
	newFile              string
	kdf                  kdfFlags
	renamed              renamedFlags
}

func (s *slotFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.keychain, "keychain-slot", false, "afterwards, the vault opens with the OS keychain (adds a keychain slot if it has none)")
	fs.BoolVar(&s.passphrase, "passphrase-slot", false, "afterwards, the vault opens with a passphrase (adds a passphrase slot if it has none)")
	s.tpm.register(fs, "add a TPM slot: a key sealed to the TPM (--tpm-device); alone it keeps every other slot")
	fs.StringVar(&s.newFile, "new-passphrase-file", "", "read the new passphrase from `FILE` instead of asking twice")
	s.kdf.register(fs)
	s.renamed.register(fs, map[string]string{
		"keychain":   "keychain-slot",
		"passphrase": "passphrase-slot",
		"tpm":        "tpm-slot",
	})
}

// moves reports whether the flags choose the vault's key sources
// (--keychain-slot or --passphrase-slot given), rather than only add a
// TPM slot.
func (s *slotFlags) moves() bool { return s.keychain || s.passphrase }

// newPassphrase reads the new passphrase: --new-passphrase-file, else
// asked twice on the terminal.
func (a *app) newPassphrase(ctx context.Context, file string) ([]byte, error) {
	if file != "" {
		return readPassphraseFile(file, a.stderr)
	}
	p, err := promptPassphrase(ctx, a.openTerminal, "New passphrase: ", true)
	if err == errNoTerminal {
		return nil, usagef("no terminal to ask for the new passphrase on: use --new-passphrase-file FILE")
	}
	return p, err
}

var cmdRotateKey = &command{
	name:    "rotate-key",
	summary: "new data key; re-seal every session; drop the old key",
	help: `Adds a new data-key generation to the vault header, re-seals every session
under it (each write atomic), checks that every session opens under the new
generation, then drops the old one: the header keeps only the new key,
and the copies the storage kept for recovery that hold the old key (the
previous header, every session's previous generation) are removed.
Killed at any instant, every session still opens, and running rotate-key
again finishes the rotation (the next command that opens the vault
finishes the removal).

--keychain-slot and --passphrase-slot choose the key sources the vault has
afterwards: one alone moves the vault to it (for example from a passphrase
to the OS keychain), both keep or add both; TPM slots are then kept only if
--tpm-slot is given too. --tpm-slot alone adds a TPM slot and keeps every
other slot. The new passphrase comes from --new-passphrase-file or is asked
twice. (The global --keychain and --tpm say how to unlock the vault, before
or after the command; the --*-slot flags say which key sources it keeps.)
Slots are added first and removed before the new key generation is made, so
a retired passphrase never wraps it.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		var sf slotFlags
		sf.register(fs)
		return func(ctx context.Context, a *app, _ []string) error {
			if err := sf.renamed.check("rotate-key"); err != nil {
				return err
			}
			return a.rotateKey(ctx, &sf)
		}
	},
}

var cmdPasswd = &command{
	name:    "passwd",
	summary: "change the passphrase, add a TPM slot, or move between passphrase and keychain",
	help: `Changes the vault's passphrase: the current one opens the vault (or the
keychain or TPM slot it has, or --keychain / --tpm), the new one comes from
--new-passphrase-file or is asked twice.
Only the header is rewritten, atomically; a wrong current passphrase
changes nothing. The header as it was before (which the old passphrase
opens) is then removed from the storage's recovery copies, so the old
passphrase opens nothing the vault folder or Redis keeps. It cannot reach
copies made before (a backup): run rotate-key too if one may exist, so
that the data key the old passphrase unlocked is dropped as well.

--keychain-slot and --passphrase-slot choose the key sources the vault has
afterwards, as for rotate-key. --tpm-slot alone adds a TPM slot (sealed to
--tpm-pcrs, if given) and changes nothing else: after a firmware update
changed the PCRs, open with the recovery passphrase and run
'vaultctl passwd --tpm-slot'.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		var sf slotFlags
		sf.register(fs)
		return func(ctx context.Context, a *app, _ []string) error {
			if err := sf.renamed.check("passwd"); err != nil {
				return err
			}
			return a.passwd(ctx, &sf)
		}
	},
}

// keySources applies the --*-slot flags to an open vault: it adds
// the slots asked for first and removes the others after, so that at
// every instant (a crash included) the vault opens with the old source
// or the new one. newPass is the passphrase for a new passphrase slot,
// or for the changed one when change is set. It returns what it did.
func (a *app) keySources(ctx context.Context, v *vault.Vault, sf *slotFlags, newPass []byte, params kdf.Params, change bool) ([]string, error) {
	var done []string
	in := v.Info()
	var hasKC, hasPP bool
	for _, s := range in.Slots {
		hasKC = hasKC || s.Kind == vault.KeychainSlot
		hasPP = hasPP || s.Kind == vault.PassphraseSlot
	}
	move := sf.moves()
	pcrs, err := parsePCRs(sf.tpm.pcrs)
	if err != nil {
		return done, err
	}
	if len(pcrs) > 0 && !sf.tpm.tpm {
		return done, usagef("--tpm-pcrs needs --tpm-slot")
	}
	if sf.tpm.tpm {
		s, err := a.sealer(pcrs)
		if err != nil {
			return done, err
		}
		id, err := v.AddTPMSlot(ctx, s)
		if err != nil {
			return done, a.explain(err)
		}
		done = append(done, "added TPM slot "+id.String())
	}
	if sf.keychain && !hasKC {
		ks, err := a.keyStore()
		if err != nil {
			return done, err
		}
		id, err := v.AddKeychainSlot(ctx, ks)
		if err != nil {
			return done, a.explain(err)
		}
		done = append(done, "added keychain slot "+id.String())
	}
	if newPass != nil {
		switch {
		case hasPP && change:
			if err := v.ChangePassphrase(ctx, newPass, params); err != nil {
				return done, a.explain(err)
			}
			done = append(done, "passphrase changed")
		case !hasPP:
			id, err := v.AddPassphraseSlot(ctx, newPass, params)
			if err != nil {
				return done, a.explain(err)
			}
			done = append(done, "added passphrase slot "+id.String())
		}
	}
	if !move {
		return done, nil
	}
	for _, s := range in.Slots {
		drop := (s.Kind == vault.KeychainSlot && !sf.keychain) || (s.Kind == vault.PassphraseSlot && !sf.passphrase) || (s.Kind == vault.TPMSlot && !sf.tpm.tpm)
		if !drop {
			continue
		}
		if err := v.RemoveSlot(ctx, s.ID); err != nil {
			return done, a.explain(err)
		}
		done = append(done, fmt.Sprintf("removed %s slot %s", slotKind(s.Kind), s.ID))
		if s.Kind == vault.KeychainSlot && !a.keychain {
			// The vault has no key store to delete the key with: the
			// slot is gone from the header, so the key is useless, but
			// it should not linger in the keychain.
			if ks, err := a.keyStoreFor(s.Service); err == nil {
				if err := ks.DeleteKey(ctx, s.Account); err != nil {
					fmt.Fprintf(a.stderr, "vaultctl: warning: the key of the removed slot is still in the keychain (%s): %v\n", s.Account, oneLine(err.Error()))
				}
			}
		}
	}
	return done, nil
}

// needNewPassphrase reports whether the command must read a new
// passphrase: passwd always unless it moves away from passphrases;
// rotate-key only to add a passphrase slot.
func needNewPassphrase(v *vault.Vault, sf *slotFlags, passwd bool) bool {
	hasPP := false
	for _, s := range v.Info().Slots {
		hasPP = hasPP || s.Kind == vault.PassphraseSlot
	}
	move := sf.moves()
	if passwd {
		if sf.tpm.tpm && !move {
			return false // passwd --tpm: add a TPM slot, nothing else
		}
		return !move || sf.passphrase
	}
	return sf.passphrase && !hasPP
}

func (a *app) rotateKey(ctx context.Context, sf *slotFlags) error {
	params, err := sf.kdf.params(a.kdfPolicy)
	if err != nil {
		return err
	}
	v, err := a.openVault(ctx)
	if err != nil {
		return err
	}
	defer v.Close()
	before := v.Info()
	var newPass []byte
	if needNewPassphrase(v, sf, false) {
		if newPass, err = a.newPassphrase(ctx, sf.newFile); err != nil {
			return err
		}
		defer secmem.Wipe(newPass)
	}
	// Slots first: the new generation is then wrapped only for the key
	// sources the vault keeps, never for one being retired.
	done, err := a.keySources(ctx, v, sf, newPass, params, false)
	if err != nil {
		return err
	}
	var p *progress
	err = v.RotateKey(ctx, func(n, total int) {
		if p == nil {
			p = a.newProgress("rotate-key", total)
		}
		p.update(n)
	})
	p.finish()
	if err != nil {
		if errors.Is(err, vault.ErrWrongKey) {
			return withHint(err, "rotate-key re-wraps every key slot: give every key source (the passphrase, --keychain, --tpm), or remove a slot first")
		}
		return withHint(a.explain(err), "run 'vaultctl rotate-key' again to finish; every session still opens")
	}
	names, err := v.Sessions(ctx)
	if err != nil {
		return a.explain(err)
	}
	info := vaultDoc(v)
	return a.emit(map[string]any{
		"previous_generation": before.Current,
		"generation":          info.Generation,
		"resealed":            len(names),
		"changes":             nonNil(done),
		"vault":               info,
	}, func(w io.Writer) {
		for _, d := range done {
			fmt.Fprintln(w, d)
		}
		fmt.Fprintf(w, "rotated to key generation %d: %d sessions re-sealed, generation %d dropped (no copy the storage keeps is sealed under it or wraps it)\n", info.Generation, len(names), before.Current)
	})
}

func (a *app) passwd(ctx context.Context, sf *slotFlags) error {
	params, err := sf.kdf.params(a.kdfPolicy)
	if err != nil {
		return err
	}
	v, err := a.openVault(ctx)
	if err != nil {
		return err
	}
	defer v.Close()
	var newPass []byte
	if needNewPassphrase(v, sf, true) {
		if newPass, err = a.newPassphrase(ctx, sf.newFile); err != nil {
			return err
		}
		defer secmem.Wipe(newPass)
	}
	done, err := a.keySources(ctx, v, sf, newPass, params, true)
	if err != nil {
		return err
	}
	info := vaultDoc(v)
	return a.emit(map[string]any{"changes": nonNil(done), "vault": info}, func(w io.Writer) {
		for _, d := range done {
			fmt.Fprintln(w, d)
		}
		printVault(w, info)
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// renamedFlags catches the spellings passwd and rotate-key had before the
// slot flags were renamed (--keychain, --passphrase, --tpm after the
// command). Those now mean the global flag (how to unlock), or nothing;
// an old script that passed them would otherwise run a different change
// without a word, so they are refused with the new name. They are not
// listed in help or completion.
type renamedFlags struct {
	names map[string]string // old name -> new name
	used  string            // the first old name given
}

func (r *renamedFlags) register(fs *flag.FlagSet, names map[string]string) {
	r.names = names
	for old := range names {
		fs.Var(&renamedFlag{name: old, r: r}, old, "")
	}
}

// check returns the usage error for an old spelling, if one was given.
func (r *renamedFlags) check(cmd string) error {
	if r.used == "" {
		return nil
	}
	msg := fmt.Sprintf("%s --%s: renamed --%s (the key sources the vault keeps)", cmd, r.used, r.names[r.used])
	if r.used != "passphrase" {
		msg += fmt.Sprintf("; to unlock with the %s, put --%s before the command", map[string]string{"keychain": "OS keychain", "tpm": "TPM"}[r.used], r.used)
	}
	return usagef("%s", msg)
}

// renamedFlag is one old spelling: a boolean flag that records its use.
type renamedFlag struct {
	name string
	r    *renamedFlags
}

func (f *renamedFlag) String() string   { return "" }
func (f *renamedFlag) IsBoolFlag() bool { return true }
func (f *renamedFlag) Set(string) error {
	if f.r.used == "" {
		f.r.used = f.name
	}
	return nil
}

// hiddenFlag reports whether help and completion leave f out.
func hiddenFlag(f *flag.Flag) bool {
	_, ok := f.Value.(*renamedFlag)
	return ok
}
