package vault

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/kdf"
)

// Golden files: vaults written once by a released version of this
// package and kept forever (docs/FORMAT.md, section 8). Each folder under
// testdata/golden/vN holds the blobs of one vault: "header" (the blob
// stored as backends.HeaderName) and "session.NAME" for each session.
// TestGolden opens every one on every run.
//
// To add a golden vault for a new format version, add an entry to
// goldenVaults and run, once:
//
//	go test ./vault -run TestGenerateGolden -golden.generate
//
// The generator refuses to overwrite a folder that exists: golden files are
// never regenerated.
var generateGolden = flag.Bool("golden.generate", false, "write missing golden vaults under testdata/golden (never overwrites)")

type goldenVault struct {
	dir        string            // under testdata/golden
	passphrase string            // opens the passphrase slot
	params     kdf.Params        // of the passphrase slot
	sessions   map[string]string // name -> testdata file of the plaintext
	// tpmDevice, when set, is the device key (hex) of the testSealer
	// that sealed the vault's TPM slot (format v2).
	tpmDevice string
	// keychainService, for a header version 3 vault, is the service its
	// keychain slot records; keychainKEK that slot's key (hex), which
	// the generator logged.
	keychainService, keychainKEK string
	// envelopes is the envelope version of each session blob; TestGolden
	// checks it, so a golden file stays the version it was written for.
	envelopes map[string]uint16
}

var goldenVaults = []goldenVault{
	{
		dir:        "v1/passphrase",
		passphrase: "golden passphrase, format v1",
		params:     kdf.Floor, // the cheapest the default policy opens
		sessions:   map[string]string{"trader-1": "testdata/session-after-login.json"},
		envelopes:  map[string]uint16{"trader-1": 1},
	},
	{
		// Header format v1, sessions in envelope version 2 (with the
		// rollback counter).
		dir:        "envelope-v2/passphrase",
		passphrase: "golden passphrase, envelope v2",
		params:     kdf.Floor,
		sessions:   map[string]string{"trader-1": "testdata/session-after-login.json"},
		envelopes:  map[string]uint16{"trader-1": 2},
	},
	{
		// Header version 2 (a TPM slot); its session envelope is
		// version 1.
		dir:        "header-v2/tpm-passphrase",
		passphrase: "golden passphrase, format v2",
		params:     kdf.Floor,
		sessions:   map[string]string{"trader-1": "testdata/session-after-login.json"},
		tpmDevice:  "5f1c0e2a9b7d4c3e8a6f0b1d2c3e4f5061728394a5b6c7d8e9f0011223344556",
		envelopes:  map[string]uint16{"trader-1": 1},
	},
	{
		// Envelope version 3 (chunked) for a session above 256 KiB,
		// next to a small session that stays version 2.
		dir:        "envelope-v3/passphrase",
		passphrase: "golden passphrase, envelope v3",
		params:     kdf.Floor,
		sessions: map[string]string{
			"trader-1": "testdata/session-after-login.json",
			"large":    "testdata/session-large.json",
		},
		envelopes: map[string]uint16{"trader-1": 2, "large": 3},
	},
	{
		dir:             "header-v3/keychain-service-passphrase",
		passphrase:      "golden passphrase, format v3",
		params:          kdf.Floor,
		sessions:        map[string]string{"trader-1": "testdata/session-after-login.json"},
		keychainService: "sessionvault-golden",
		keychainKEK:     "e6be672e39fefeeea68d5092e1b70aef8628dea94a3d1d4a563c73f31ceb3a06",
		envelopes:       map[string]uint16{"trader-1": 2},
	},
}

// keyStore returns a key store for g's keychain slot, holding its key
// when the golden vault exists (nil when g has none).
func (g goldenVault) keyStore(t testing.TB, vaultID, slotID string) *serviceKeyStore {
	if g.keychainService == "" {
		return nil
	}
	ks := &serviceKeyStore{keyStore: newKeyStore(), service: g.keychainService}
	if vaultID != "" {
		k, err := hex.DecodeString(g.keychainKEK)
		if err != nil || len(k) != 32 {
			t.Fatalf("golden %s: bad keychainKEK", g.dir)
		}
		ks.keys[vaultID+"/"+slotID] = k
	}
	return ks
}

// sealer returns the testSealer of g's TPM slot, or nil.
func (g goldenVault) sealer(t testing.TB) *testSealer {
	if g.tpmDevice == "" {
		return nil
	}
	k, err := hex.DecodeString(g.tpmDevice)
	if err != nil || len(k) != 32 {
		t.Fatalf("golden %s: bad tpmDevice", g.dir)
	}
	s := &testSealer{}
	copy(s.device[:], k)
	return s
}

func TestGenerateGolden(t *testing.T) {
	if !*generateGolden {
		t.Skip("run with -golden.generate to write missing golden vaults")
	}
	ctx := context.Background()
	for _, g := range goldenVaults {
		dir := filepath.Join("testdata", "golden", g.dir)
		if _, err := os.Stat(dir); err == nil {
			t.Logf("%s exists: left alone", dir)
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		b := memory.New()
		opts := []Option{WithPassphrase([]byte(g.passphrase)), WithKDFParams(g.params)}
		if s := g.sealer(t); s != nil {
			opts = append(opts, WithTPM(s))
		}
		ks := g.keyStore(t, "", "")
		if ks != nil {
			opts = append(opts, WithKeyStore(ks))
		}
		v, err := Create(ctx, b, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if ks != nil {
			for a, k := range ks.keys {
				t.Logf("%s: keychain slot %s, keychainKEK %x", g.dir, a, k)
			}
		}
		for name, file := range g.sessions {
			plain, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Store(name).Seal(ctx, plain, backends.Absent); err != nil {
				t.Fatal(err)
			}
		}
		v.Close()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(file, blobName string) {
			blob, _, err := b.Get(ctx, blobName)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(blob); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		write("header", backends.HeaderName)
		for name := range g.sessions {
			write("session."+name, name)
		}
		t.Logf("wrote %s", dir)
	}
}

// loadGolden returns a memory backend holding the blobs of golden vault g.
func loadGolden(t testing.TB, g goldenVault) (*memory.Backend, map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "golden", g.dir)
	blobs := map[string][]byte{}
	hdr, err := os.ReadFile(filepath.Join(dir, "header"))
	if err != nil {
		t.Fatal(err)
	}
	blobs[backends.HeaderName] = hdr
	for name := range g.sessions {
		blob, err := os.ReadFile(filepath.Join(dir, "session."+name))
		if err != nil {
			t.Fatal(err)
		}
		blobs[name] = blob
	}
	b := memory.New()
	for name, blob := range blobs {
		if _, err := b.Put(context.Background(), name, blob, backends.Absent); err != nil {
			t.Fatal(err)
		}
	}
	return b, blobs
}

func TestGolden(t *testing.T) {
	ctx := context.Background()
	for _, g := range goldenVaults {
		t.Run(g.dir, func(t *testing.T) {
			b, blobs := loadGolden(t, g)
			// Parse-then-encode reproduces the header byte for byte.
			h, err := parseHeader(blobs[backends.HeaderName], kdf.DefaultPolicy)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h.encode(), blobs[backends.HeaderName]) {
				t.Fatal("golden header does not round-trip")
			}
			// The real floor is enforced: no insecure policy here.
			v, err := Open(ctx, b, WithPassphrase([]byte(g.passphrase)))
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			in := v.Info()
			if s := in.Slots[len(in.Slots)-1]; s.Kind != PassphraseSlot || s.KDF != g.params || in.Current != 1 {
				t.Fatalf("info %+v", in)
			}
			if s := g.sealer(t); s != nil {
				if in.FormatVersion != 2 || in.Slots[0].Kind != TPMSlot {
					t.Fatalf("info %+v", in)
				}
				vt, err := Open(ctx, b, WithTPM(s))
				if err != nil {
					t.Fatalf("golden TPM slot: %v", err)
				}
				vt.Close()
			}
			if g.keychainService != "" {
				s := in.Slots[0]
				if in.FormatVersion != 3 || s.Kind != KeychainSlot || s.Service != g.keychainService {
					t.Fatalf("info %+v", in)
				}
				vk, err := Open(ctx, b, WithKeyStore(g.keyStore(t, in.ID, s.ID.String())))
				if err != nil {
					t.Fatalf("golden keychain slot: %v", err)
				}
				vk.Close()
			}
			for name, file := range g.sessions {
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				env, err := parseEnvelope(name, blobs[name])
				if err != nil || env.version != g.envelopes[name] {
					t.Fatalf("session %s: envelope version %d (%v), want %d", name, env.version, err, g.envelopes[name])
				}
				plain, _, err := v.Store(name).Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(plain, want) {
					t.Fatalf("session %s differs from %s", name, file)
				}
				secmem.Wipe(plain)
			}
			_, err = Open(ctx, b, WithPassphrase([]byte("not the golden passphrase")))
			wantErr(t, err, ErrWrongKey, "golden vault, wrong passphrase")
		})
	}
}

// TestGoldenOnFileBackend opens each golden vault from a folder, as
// vaultctl would: the blobs are copied into a backends/file folder first.
func TestGoldenOnFileBackend(t *testing.T) {
	ctx := context.Background()
	for _, g := range goldenVaults {
		t.Run(g.dir, func(t *testing.T) {
			_, blobs := loadGolden(t, g)
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			b, err := file.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for name, blob := range blobs {
				if _, err := b.Put(ctx, name, blob, backends.Absent); err != nil {
					t.Fatal(err)
				}
			}
			opts := []Option{WithPassphrase([]byte(g.passphrase))}
			if s := g.sealer(t); s != nil {
				opts = append(opts, WithTPM(s)) // RotateKey re-wraps every slot
			}
			if g.keychainService != "" {
				in, err := Inspect(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, WithKeyStore(g.keyStore(t, in.ID, in.Slots[0].ID.String())))
			}
			v, err := Open(ctx, b, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			for name := range g.sessions {
				plain, _, err := v.Store(name).Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				secmem.Wipe(plain)
			}
			// A golden vault keeps working: a rotation of it opens.
			if err := v.RotateKey(ctx, nil); err != nil {
				t.Fatal(err)
			}
			v2, err := Open(ctx, b, WithPassphrase([]byte(g.passphrase)))
			if err != nil {
				t.Fatal(err)
			}
			v2.Close()
		})
	}
}
