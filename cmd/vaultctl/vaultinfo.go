package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// vaultInfo is the vault as status, init and verify print it. It holds
// no secret: ids, parameters, generation numbers.
type vaultInfo struct {
	ID            string     `json:"id"`
	FormatVersion int        `json:"format_version"`
	Generation    uint32     `json:"generation"`
	Generations   []uint32   `json:"generations"`
	Rotating      bool       `json:"rotating"`
	Slots         []slotInfo `json:"slots"`
	UnlockedBy    string     `json:"unlocked_by"`
	KeysLocked    bool       `json:"keys_in_locked_memory"`
}

type slotInfo struct {
	ID   string   `json:"id"`
	Kind string   `json:"kind"` // "passphrase" or "keychain"
	KDF  *kdfInfo `json:"kdf,omitempty"`
	// Account is the keychain entry of a keychain slot.
	Account string `json:"keychain_account,omitempty"`
	// Service is the keychain service the slot records ("" before
	// header version 3: then the default service, or --keychain-service).
	Service string `json:"keychain_service,omitempty"`
	// TPM describes a TPM slot's sealed key.
	TPM *tpmInfo `json:"tpm,omitempty"`
}

type tpmInfo struct {
	PCRs []int  `json:"pcrs"` // SHA-256 PCRs the key is sealed to
	Text string `json:"description"`
}

type kdfInfo struct {
	Algorithm string `json:"algorithm"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

func (k *kdfInfo) params() kdf.Params {
	return kdf.Params{Time: k.Time, MemoryKiB: k.MemoryKiB, Threads: k.Threads}
}

func kdfDoc(p kdf.Params) *kdfInfo {
	return &kdfInfo{Algorithm: "argon2id", Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads}
}

func slotKind(k vault.SlotKind) string {
	switch k {
	case vault.PassphraseSlot:
		return "passphrase"
	case vault.KeychainSlot:
		return "keychain"
	case vault.TPMSlot:
		return "tpm"
	}
	return strings.ToLower(k.String())
}

// vaultDoc describes an open vault.
func vaultDoc(v *vault.Vault) vaultInfo {
	in := v.Info()
	d := vaultInfo{
		ID:            in.ID,
		FormatVersion: in.FormatVersion,
		Generation:    in.Current,
		Generations:   in.Generations,
		Rotating:      in.Rotating,
		UnlockedBy:    in.UnlockedBy.String(),
		KeysLocked:    in.KeysLocked,
		Slots:         []slotInfo{},
	}
	for _, s := range in.Slots {
		si := slotInfo{ID: s.ID.String(), Kind: slotKind(s.Kind)}
		switch s.Kind {
		case vault.PassphraseSlot:
			si.KDF = kdfDoc(s.KDF)
		case vault.KeychainSlot:
			si.Account = s.Account
			si.Service = s.Service
		case vault.TPMSlot:
			pcrs, text := tpmSlotText(s.Sealed)
			si.TPM = &tpmInfo{PCRs: nonNilInts(pcrs), Text: text}
		}
		d.Slots = append(d.Slots, si)
	}
	return d
}

// printVault prints the vault's key slots and generation.
func printVault(w io.Writer, d vaultInfo) {
	fmt.Fprintf(w, "format v%d, key generation %d", d.FormatVersion, d.Generation)
	if d.Rotating {
		fmt.Fprintf(w, " (an interrupted rotation left generations %v: run 'vaultctl rotate-key' to finish it)", d.Generations)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "key slots: %d\n", len(d.Slots))
	for _, s := range d.Slots {
		mark := ""
		if s.ID == d.UnlockedBy {
			mark = " (unlocked this run)"
		}
		switch {
		case s.KDF != nil:
			fmt.Fprintf(w, "  %s passphrase, %v%s\n", s.ID, s.KDF.params(), mark)
		case s.Account != "" && s.Service != "":
			fmt.Fprintf(w, "  %s keychain, service %s, account %s%s\n", s.ID, s.Service, s.Account, mark)
		case s.Account != "":
			fmt.Fprintf(w, "  %s keychain, account %s%s\n", s.ID, s.Account, mark)
		case s.TPM != nil:
			fmt.Fprintf(w, "  %s tpm, %s%s\n", s.ID, s.TPM.Text, mark)
		default:
			fmt.Fprintf(w, "  %s %s%s\n", s.ID, s.Kind, mark)
		}
	}
}
