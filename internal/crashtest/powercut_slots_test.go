//go:build linux

package crashtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/internal/powerloss"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/internal/servicetest"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

func init() { powerRoles["slotmove"] = slotMoveChild }

// envSlotService names the keychain service the slot-move children use,
// one per test run, so that runs never see each other's keys.
const envSlotService = "SESSIONVAULT_POWERCUT_SERVICE"

// openSlots opens the vault at dir with the passphrase and the keychain
// both offered, and returns it with its backend and key store.
func openSlots(ctx context.Context, dir, service string) (*vault.Vault, *file.Backend, *keychain.Keychain, error) {
	ks, err := keychain.New(keychain.WithService(service))
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := file.New(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(passA)), vault.WithKeyStore(ks), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		b.Close()
		return nil, nil, nil, err
	}
	return v, b, ks, nil
}

// slotKinds returns how many passphrase and keychain slots v has.
func slotKinds(v *vault.Vault) (pass, kc int) {
	for _, s := range v.Info().Slots {
		switch s.Kind {
		case vault.PassphraseSlot:
			pass++
		case vault.KeychainSlot:
			kc++
		}
	}
	return pass, kc
}

// slotMoveChild moves the vault at args[0] to a slot of the kind args[1]
// names ("keychain" or "passphrase"): it adds that slot unless the vault
// has one (a move cut half-way), then removes every slot of the other
// kind, and reports "done to KIND".
func slotMoveChild(args []string) error {
	ctx := context.Background()
	v, b, ks, err := openSlots(ctx, args[0], os.Getenv(envSlotService))
	if err != nil {
		return err
	}
	defer b.Close()
	defer v.Close()
	reexec.Report("ready")
	pass, kc := slotKinds(v)
	to := vault.KeychainSlot
	if args[1] == "passphrase" {
		to = vault.PassphraseSlot
	}
	if (to == vault.KeychainSlot && kc == 0) || (to == vault.PassphraseSlot && pass == 0) {
		if to == vault.KeychainSlot {
			_, err = v.AddKeychainSlot(ctx, ks)
		} else {
			_, err = v.AddPassphraseSlot(ctx, []byte(passA), testKDF)
		}
		if err != nil {
			reexec.Report("error add: %v", err)
			return err
		}
		reexec.Report("added")
	}
	for _, s := range v.Info().Slots {
		if s.Kind != to {
			if err := v.RemoveSlot(ctx, s.ID); err != nil {
				reexec.Report("error remove: %v", err)
				return err
			}
		}
	}
	reexec.Report("done to %s", args[1])
	return nil
}

// TestPowerCutSlotMoves cuts the power under slot moves between a
// passphrase slot and a keychain slot (the real Secret Service, which a
// cut does not touch): after every cut the vault opens with the
// passphrase or the keychain, every session opens, and a move that
// returned is there.
func TestPowerCutSlotMoves(t *testing.T) {
	servicetest.Require(t, "SESSIONVAULT_SECRET_SERVICE", "Secret Service", "scripts/with-keyring")
	fs, dir := mountVault(t)
	n := powerSessions() / 3
	createMany(t, dir, n)
	service := fmt.Sprintf("sessionvault-powercut-%d", os.Getpid())
	t.Setenv(envSlotService, service)
	target := "keychain"
	w := powerloss.Workload{
		Name:  "powercut/slot-moves",
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start("slotmove", reexec.Options{}, dir, target)
		},
		Checks: append([]powerloss.Check{{Name: "slots", Fn: func(ctx context.Context, r *powerloss.Round) error {
			v, b, _, err := openSlots(ctx, dir, service)
			if err != nil {
				r.Figures.Inc("unreadable_vaults")
				return fmt.Errorf("vault opens with neither the passphrase nor the keychain: %w", err)
			}
			pass, kc := slotKinds(v)
			bad, err := checkManyIn(ctx, v, n)
			v.Close()
			b.Close()
			r.Figures.Add("unreadable_sessions", int64(bad))
			if err != nil || bad > 0 {
				return fmt.Errorf("%d sessions do not open: %v", bad, err)
			}
			if r.Has("done to keychain") && (kc == 0 || pass > 0) || r.Has("done to passphrase") && (pass == 0 || kc > 0) {
				r.Figures.Inc("lost_acked")
				return fmt.Errorf("the move returned, but the slots are %d passphrase, %d keychain", pass, kc)
			}
			switch {
			case pass > 0 && kc > 0:
				r.Figures.Inc("cut_mid_move")
			case kc > 0:
				target = "passphrase"
				r.Figures.Inc("moved_to_keychain")
			default:
				if target == "passphrase" {
					r.Figures.Inc("moved_to_passphrase")
				}
				target = "keychain"
			}
			return nil
		}}}, postCut(dir, passA)...),
	}
	f := powerloss.Run(t, fs, w, powerloss.Config{Cuts: powerCuts(8), MaxSyncs: 6, Window: 40 * time.Millisecond, Seed: powerSeed()})
	f.Declare("unreadable_vaults", "unreadable_sessions", "lost_acked", "cut_mid_move", "moved_to_keychain", "moved_to_passphrase")
	f.Add("sessions", int64(n))
	f.Report(t)
	zeroFigures(t, f, "unreadable_vaults", "unreadable_sessions", "lost_acked")
}
