package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/retired"
	"github.com/sessionvault/sessionvault/kdf"
)

// wantNoGeneration fails if anything b keeps (current and previous
// generation of the header and of every session) is sealed under, or
// lists, generation g.
func wantNoGeneration(t testing.TB, b backends.Backend, g uint32) {
	t.Helper()
	if left := generationLeft(t, b, g); left != "" {
		t.Fatal(left)
	}
}

// generationLeft returns what b keeps (current and previous generations
// of every session and of the header) that is sealed under or lists
// generation g, or "" if nothing is.
func generationLeft(t testing.TB, b backends.Backend, g uint32) string {
	t.Helper()
	ctx := context.Background()
	rec := b.(backends.Recoverer)
	names, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(names, backends.HeaderName) {
		for _, prev := range []bool{false, true} {
			var blob []byte
			if prev {
				blob, _, err = rec.Previous(ctx, name)
			} else {
				blob, _, err = b.Get(ctx, name)
			}
			if errors.Is(err, backends.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if name == backends.HeaderName {
				h, err := parseHeader(blob, kdf.InsecurePolicyForTesting)
				if err == nil && containsGen(h.gens, g) {
					return fmt.Sprintf("header (previous: %v) still lists dropped generation %d: %v", prev, g, h.gens)
				}
				continue
			}
			if env, err := parseEnvelope(name, blob); err == nil && env.gen == g {
				return fmt.Sprintf("session %q (previous: %v) is still sealed under dropped generation %d", name, prev, g)
			}
		}
	}
	return ""
}

// unpurged is a file backend that the vault does not know keeps previous
// generations (it hides backends.Recoverer), so the vault never purges:
// the behaviour before retirement existed, for the scanner's self-test.
// The files still keep every previous generation.
type unpurged struct{ backends.Backend }

// retireCase is one security-relevant change and what it retires.
type retireCase struct {
	name string
	// create options and the change; change returns the credentials it
	// retired and the ones in use afterwards.
	opts   func(ks *keyStore) []Option
	change func(t *testing.T, v *Vault, ks *keyStore) (retiredC, live retired.Credentials)
}

func kekOf(t *testing.T, v *Vault, ks *keyStore, kind SlotKind) []byte {
	t.Helper()
	for _, s := range v.Info().Slots {
		if s.Kind == kind {
			k, err := ks.GetKey(context.Background(), s.Account)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
	t.Fatalf("no %v slot", kind)
	return nil
}

func slotOf(v *Vault, kind SlotKind) SlotID {
	for _, s := range v.Info().Slots {
		if s.Kind == kind {
			return s.ID
		}
	}
	return SlotID{}
}

var cheapParams = insecureTestParams

var retireCases = []retireCase{
	{
		name: "passwd",
		opts: func(*keyStore) []Option { return cheap("old passphrase") },
		change: func(t *testing.T, v *Vault, _ *keyStore) (retired.Credentials, retired.Credentials) {
			if err := v.ChangePassphrase(context.Background(), []byte("new passphrase"), cheapParams); err != nil {
				t.Fatal(err)
			}
			return retired.Credentials{Passphrases: [][]byte{[]byte("old passphrase")}},
				retired.Credentials{LivePassphrases: [][]byte{[]byte("new passphrase")}}
		},
	},
	{
		name: "passwd-to-keychain",
		opts: func(*keyStore) []Option { return cheap("old passphrase") },
		change: func(t *testing.T, v *Vault, ks *keyStore) (retired.Credentials, retired.Credentials) {
			ctx := context.Background()
			pp := slotOf(v, PassphraseSlot)
			if _, err := v.AddKeychainSlot(ctx, ks); err != nil {
				t.Fatal(err)
			}
			if err := v.RemoveSlot(ctx, pp); err != nil {
				t.Fatal(err)
			}
			return retired.Credentials{Passphrases: [][]byte{[]byte("old passphrase")}},
				retired.Credentials{LiveKEKs: [][]byte{kekOf(t, v, ks, KeychainSlot)}}
		},
	},
	{
		name: "passwd-to-both",
		opts: func(*keyStore) []Option { return cheap("old passphrase") },
		change: func(t *testing.T, v *Vault, ks *keyStore) (retired.Credentials, retired.Credentials) {
			ctx := context.Background()
			if _, err := v.AddKeychainSlot(ctx, ks); err != nil {
				t.Fatal(err)
			}
			if err := v.ChangePassphrase(ctx, []byte("new passphrase"), cheapParams); err != nil {
				t.Fatal(err)
			}
			return retired.Credentials{Passphrases: [][]byte{[]byte("old passphrase")}},
				retired.Credentials{LivePassphrases: [][]byte{[]byte("new passphrase")}, LiveKEKs: [][]byte{kekOf(t, v, ks, KeychainSlot)}}
		},
	},
	{
		name: "remove-keychain-slot",
		opts: func(ks *keyStore) []Option { return cheap("passphrase", WithKeyStore(ks)) },
		change: func(t *testing.T, v *Vault, ks *keyStore) (retired.Credentials, retired.Credentials) {
			kek := kekOf(t, v, ks, KeychainSlot)
			if err := v.RemoveSlot(context.Background(), slotOf(v, KeychainSlot)); err != nil {
				t.Fatal(err)
			}
			if ks.len() != 0 {
				t.Fatalf("the removed slot's key is still in the key store (%d keys)", ks.len())
			}
			return retired.Credentials{KEKs: [][]byte{kek}},
				retired.Credentials{LivePassphrases: [][]byte{[]byte("passphrase")}}
		},
	},
	{
		name: "remove-passphrase-slot",
		opts: func(ks *keyStore) []Option { return cheap("passphrase", WithKeyStore(ks)) },
		change: func(t *testing.T, v *Vault, ks *keyStore) (retired.Credentials, retired.Credentials) {
			if err := v.RemoveSlot(context.Background(), slotOf(v, PassphraseSlot)); err != nil {
				t.Fatal(err)
			}
			return retired.Credentials{Passphrases: [][]byte{[]byte("passphrase")}},
				retired.Credentials{LiveKEKs: [][]byte{kekOf(t, v, ks, KeychainSlot)}}
		},
	},
	{
		name: "rotate-key",
		opts: func(ks *keyStore) []Option { return cheap("passphrase", WithKeyStore(ks)) },
		change: func(t *testing.T, v *Vault, ks *keyStore) (retired.Credentials, retired.Credentials) {
			v.mu.RLock()
			dk := bytes.Clone(v.current().key.Bytes())
			v.mu.RUnlock()
			if err := v.RotateKey(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			return retired.Credentials{DroppedKeys: [][]byte{dk}},
				retired.Credentials{LivePassphrases: [][]byte{[]byte("passphrase")}, LiveKEKs: [][]byte{kekOf(t, v, ks, KeychainSlot)}}
		},
	},
}

// TestRetiredOpensNothing makes each security-relevant change on a real
// file backend whose sessions were written several times (so that every
// session has a previous generation, and the header several), then scans
// every file of the vault folder for headers and envelopes at any offset
// and tries the retired credentials: nothing may open. The same run on a
// backend whose DropPrevious does nothing (the behaviour before
// retirement) must find something: the scan is not blind.
func TestRetiredOpensNothing(t *testing.T) {
	f := figures.New("vault/retired")
	f.Declare("changes", "findings", "headers_scanned", "envelopes_scanned", "unpurged_changes", "unpurged_found")
	defer f.Report(t)
	for _, tc := range retireCases {
		for _, broken := range []bool{false, true} {
			name := tc.name
			if broken {
				name += "/unpurged"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				fb, err := file.New(t.TempDir() + "/vault")
				if err != nil {
					t.Fatal(err)
				}
				defer fb.Close()
				var b backends.Backend = fb
				if broken {
					b = unpurged{fb}
				}
				ks := newKeyStore()
				v, err := Create(ctx, b, tc.opts(ks)...)
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				for i := range 3 {
					for round := range 2 {
						seal(t, v, fmt.Sprintf("s%d", i), fmt.Sprintf("before %d", round))
					}
				}
				ret, live := tc.change(t, v, ks)
				seal(t, v, "s0", "after")
				seal(t, v, "new", "after")
				ret.LivePassphrases, ret.LiveKEKs = live.LivePassphrases, live.LiveKEKs
				rep, err := retired.New(ret).ScanDir(fb.Path())
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d files, %d headers, %d envelopes, %d findings", rep.Blobs, rep.Headers, rep.Envelopes, len(rep.Findings))
				if broken {
					// The self-test's findings, per change: "unpurged_" and
					// the case name with _ for -.
					f.Add("unpurged_changes", 1)
					f.Add("unpurged_"+strings.ReplaceAll(tc.name, "-", "_"), int64(len(rep.Findings)))
					if len(rep.Findings) == 0 {
						t.Fatal("the scanner found nothing on a backend that keeps every previous generation: it is blind")
					}
					f.Add("unpurged_found", 1)
					return
				}
				f.Add("changes", 1)
				f.Add("findings", int64(len(rep.Findings)))
				f.Add("headers_scanned", int64(rep.Headers))
				f.Add("envelopes_scanned", int64(rep.Envelopes))
				for _, f := range rep.Findings {
					t.Errorf("retired credential opens: %s", f)
				}
				if rep.Headers == 0 || rep.Envelopes == 0 {
					t.Fatalf("scanned %d headers and %d envelopes: nothing to test", rep.Headers, rep.Envelopes)
				}
				if in := v.Info(); in.PurgeErr != nil {
					t.Fatalf("PurgeErr = %v", in.PurgeErr)
				}
				// Every session still opens.
				if got := open(t, v, "s0"); got != "after" {
					t.Fatalf("s0 = %q", got)
				}
				for _, n := range []string{"s1", "s2"} {
					if got := open(t, v, n); got != "before 1" {
						t.Fatalf("%s = %q", n, got)
					}
				}
			})
		}
	}
}

// TestPurgeCrashAtEveryStep stops each change after every k-th write (the
// memory backend's writes are atomic: these are all the states storage
// can be left in), then checks what a fresh process sees: the vault opens
// with the old credential or the new one, never neither; and once it
// opened (Open finishes the purge), nothing kept opens with the retired
// one.
func TestPurgeCrashAtEveryStep(t *testing.T) {
	f := figures.New("vault/purge-crash")
	f.Declare("states", "opened_old", "opened_new", "unopenable", "retired_copies")
	defer f.Report(t)
	for k := 0; k < 12; k++ {
		t.Run(fmt.Sprint("passwd after ", k, " writes"), func(t *testing.T) { purgeCrashStep(t, f, k, nil) })
	}
}

// TestPurgeCrashHarnessCatchesUnpurgedVault runs TestPurgeCrashAtEveryStep's
// harness on a vault that never purges (its backend hides
// backends.Recoverer, as before retirement): the harness must find the
// retired passphrase opening the kept previous header.
func TestPurgeCrashHarnessCatchesUnpurgedVault(t *testing.T) {
	f := figures.New("vault/purge-crash-selftest")
	f.Declare("states", "opened_old", "opened_new", "unopenable", "retired_copies")
	defer f.Report(t)
	for k := 0; k < 12; k++ {
		t.Run(fmt.Sprint("passwd after ", k, " writes"), func(t *testing.T) {
			purgeCrashStep(t, f, k, func(b *memory.Backend) backends.Backend { return unpurged{b} })
		})
	}
	if f.Get("retired_copies") == 0 {
		t.Fatalf("the harness found no retired copy in a vault that never purges: %s", f)
	}
}

// purgeCrashStep is one state of TestPurgeCrashAtEveryStep: passwd
// stopped after k writes, then what a fresh process sees. wrap, when set,
// is the backend the vault is given over the memory backend (a
// self-test's broken one); its findings are then counted, not failures.
func purgeCrashStep(t *testing.T, f *figures.Set, k int, wrap func(*memory.Backend) backends.Backend) {
	ctx := context.Background()
	fatal := t.Fatalf
	if wrap != nil {
		fatal = t.Logf
	}
	f.Add("states", 1)
	b := memory.New()
	var bk backends.Backend = b
	if wrap != nil {
		bk = wrap(b)
	}
	v, err := Create(ctx, bk, cheap("old")...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range 3 {
		seal(t, v, fmt.Sprintf("s%d", i), "x")
		seal(t, v, fmt.Sprintf("s%d", i), "y")
	}
	revive, _ := crashAfter(b, k)
	err = v.ChangePassphrase(ctx, []byte("new"), cheapParams)
	revive()
	v2, errNew := Open(ctx, bk, cheap("new")...)
	if errNew != nil {
		var errOld error
		v2, errOld = Open(ctx, bk, cheap("old")...)
		if errOld != nil {
			f.Add("unopenable", 1)
			t.Fatalf("opens with neither passphrase: new %v, old %v", errNew, errOld)
		}
		f.Add("opened_old", 1)
		v2.Close()
		if err == nil {
			t.Fatal("ChangePassphrase returned nil but the old passphrase still opens")
		}
		return
	}
	defer v2.Close()
	f.Add("opened_new", 1)
	if _, err := Open(ctx, bk, cheap("old")...); !errors.Is(err, ErrWrongKey) {
		f.Add("retired_copies", 1)
		fatal("the retired passphrase: %v, want ErrWrongKey", err)
		return
	}
	if wrap == nil {
		if !t.Run("no retired previous header", func(t *testing.T) { wantNoPrevHeaderOpens(t, b, "old") }) {
			f.Add("retired_copies", 1)
		}
		return
	}
	if prevHeaderOpens(t, b, "old") {
		f.Add("retired_copies", 1)
		t.Logf("found, as it must be: the kept previous header opens with the retired passphrase")
	}
}

// prevHeaderOpens reports whether the kept previous header opens with
// pass.
func prevHeaderOpens(t *testing.T, b *memory.Backend, pass string) bool {
	t.Helper()
	prev, _, err := b.Previous(context.Background(), backends.HeaderName)
	if errors.Is(err, backends.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	c := newConfig(cheap(pass))
	defer c.pass.Destroy()
	v, err := openHeaderBlob(context.Background(), b, c, prev, "")
	if err != nil {
		return false
	}
	v.pass = nil
	v.Close()
	return true
}

// wantNoPrevHeaderOpens fails if the kept previous header opens with
// pass.
func wantNoPrevHeaderOpens(t *testing.T, b *memory.Backend, pass string) {
	t.Helper()
	if prevHeaderOpens(t, b, pass) {
		t.Fatal("the kept previous header opens with the retired passphrase")
	}
}

// TestPurgeKeychainPreviousOutOfPolicy: a purge whose previous header the
// opening Vault's KDF policy refuses (its passphrase slot was made under
// a looser policy) still deletes the key store entries of the keychain
// slots the change removed. The previous header is the only record of
// those slots; parsing it under the policy dropped it unread, and the
// removed slot's key stayed in the key store for good.
func TestPurgeKeychainPreviousOutOfPolicy(t *testing.T) {
	ctx := context.Background()
	ks := newKeyStore()
	// Passphrase slot with test parameters (refused by the default
	// policy) and keychain slot A; then keychain slot B.
	v, b := newVault(t, cheap("old passphrase", WithKeyStore(ks))...)
	a := slotOf(v, KeychainSlot)
	accountA := account(v.hdr.id, a)
	kekA, err := ks.GetKey(ctx, accountA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddKeychainSlot(ctx, ks); err != nil {
		t.Fatal(err)
	}
	before, _, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	// The change: only keychain slot B is left. Its own purge deletes A's
	// key; a crash before that purge is what the rest rebuilds.
	if err := v.RemoveSlot(ctx, slotOf(v, PassphraseSlot)); err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveSlot(ctx, a); err != nil {
		t.Fatal(err)
	}
	v.Close()
	after, ver, err := b.Get(ctx, backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	// Crash state: the previous header is the one before the change, and
	// A's key is still in the key store.
	if ver, err = b.Put(ctx, backends.HeaderName, before, ver); err != nil {
		t.Fatal(err)
	}
	if _, err = b.Put(ctx, backends.HeaderName, after, ver); err != nil {
		t.Fatal(err)
	}
	if err := ks.PutKey(ctx, accountA, kekA); err != nil {
		t.Fatal(err)
	}
	if _, err := parseHeader(before, kdf.DefaultPolicy); !errors.Is(err, ErrPolicy) {
		t.Fatalf("the previous header under the default policy: %v, want ErrPolicy", err)
	}

	// Open with the default policy, through slot B: the pending purge runs.
	w := mustOpen(t, b, WithKeyStore(ks))
	if err := w.Info().PurgeErr; err != nil {
		t.Fatalf("purge on open: %v", err)
	}
	if _, err := ks.GetKey(ctx, accountA); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("removed keychain slot's key after the purge: %v, want ErrNotFound", err)
	}
	if prev, _, err := b.Previous(ctx, backends.HeaderName); err == nil && bytes.Equal(prev, before) {
		t.Fatal("the previous header is still kept after the purge")
	}
}
