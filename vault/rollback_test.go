package vault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/memory"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/session"
)

// rollbackVault is a file-backed vault for the rollback tests, with its
// folder and a freshness file outside it.
func rollbackVault(t *testing.T) (dir, fresh string) {
	t.Helper()
	root := t.TempDir()
	dir, fresh = filepath.Join(root, "vault"), filepath.Join(root, "state", "fresh.json")
	if err := os.Mkdir(filepath.Join(root, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Create(context.Background(), b, cheap(testPass, WithFreshnessFile(fresh))...)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	b.Close()
	return dir, fresh
}

func openDir(t *testing.T, dir string, opts ...Option) *Vault {
	t.Helper()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return mustOpen(t, b, append(cheap(testPass), opts...)...)
}

// dirBackend opens a second file backend on the vault folder dir, as
// another process would: what it writes the Vault under test did not see.
func dirBackend(t *testing.T, dir string) *file.Backend {
	t.Helper()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantRollback opens name in v and wants ErrRollback (and nothing
// else: not corrupt, not a wrong key).
func wantRollback(t *testing.T, v *Vault, name, what string) {
	t.Helper()
	_, _, err := v.Store(name).Open(context.Background())
	wantErr(t, err, ErrRollback, what)
}

// TestRollbackSession puts older blobs of a session back in place on a
// real file backend, every way storage allows: its previous generation
// over the current one, an older copy (two writes back), and a deleted
// session brought back. The Vault that saw the newer blob refuses each
// with ErrRollback; a fresh Vault with the same freshness file refuses it
// too; a fresh Vault without the file cannot tell and opens it (the limit
// SECURITY.md states).
func TestRollbackSession(t *testing.T) {
	ctx := context.Background()
	f := figures.New("vault/rollback-session")
	f.Declare("cases", "readers", "refused", "opened_without_record")
	for _, tc := range []string{"previous generation", "older copy", "deleted session resurrected"} {
		t.Run(tc, func(t *testing.T) {
			f.Add("cases", 1)
			dir, fresh := rollbackVault(t)
			v := openDir(t, dir, WithFreshnessFile(fresh))
			cur := filepath.Join(dir, "sessions", "s.sealed")
			seal(t, v, "s", "one")
			old := readFile(t, cur)
			seal(t, v, "s", "two")
			seal(t, v, "s", "three")
			switch tc {
			case "previous generation":
				// Put back the previous generation the backend keeps (in
				// file layout 2, the record's other slot).
				fb := dirBackend(t, dir)
				prev, _, err := fb.Previous(ctx, "s")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fb.Put(ctx, "s", prev, backends.Any); err != nil {
					t.Fatal(err)
				}
			case "older copy":
				writeFile(t, cur, old)
			case "deleted session resurrected":
				if err := v.Store("s").Delete(ctx, backends.Any); err != nil {
					t.Fatal(err)
				}
				writeFile(t, cur, old)
			}
			f.Add("readers", 3)
			wantRollback(t, v, "s", "the Vault that saw the newer blob")
			f.Add("refused", 1)
			wantRollback(t, openDir(t, dir, WithFreshnessFile(fresh)), "s", "a fresh Vault with the freshness file")
			f.Add("refused", 1)
			if got := open(t, openDir(t, dir), "s"); got == "three" {
				t.Fatal("the rolled-back blob holds the newest content: the test put nothing back")
			}
			f.Add("opened_without_record", 1)
			// The session Manager refuses it too.
			_, err := session.NewManager(ctx, openDir(t, dir, WithFreshnessFile(fresh)).Store("s"))
			if err == nil {
				t.Fatal("session.NewManager opened a rolled-back session")
			}
			if !errors.Is(err, ErrRollback) {
				t.Fatalf("session.NewManager: %v, want ErrRollback", err)
			}
			f.Add("refused", 1)
		})
	}
	f.Report(t)
}

// TestRollbackNewerStillOpens checks there is no false alarm: a Vault
// opens what another Vault (another process) wrote since, and a session
// deleted and created again.
func TestRollbackNewerStillOpens(t *testing.T) {
	ctx := context.Background()
	dir, fresh := rollbackVault(t)
	a := openDir(t, dir, WithFreshnessFile(fresh))
	b := openDir(t, dir, WithFreshnessFile(fresh))
	seal(t, a, "s", "one")
	if got := open(t, b, "s"); got != "one" {
		t.Fatal(got)
	}
	seal(t, b, "s", "two")
	if got := open(t, a, "s"); got != "two" {
		t.Fatal(got)
	}
	if err := a.Store("s").Delete(ctx, backends.Any); err != nil {
		t.Fatal(err)
	}
	seal(t, b, "s", "again")
	if got := open(t, a, "s"); got != "again" {
		t.Fatal(got)
	}
	if got := open(t, openDir(t, dir, WithFreshnessFile(fresh)), "s"); got != "again" {
		t.Fatal(got)
	}
}

// TestRollbackRecoverIsDeliberate checks that Recover, which rolls a
// damaged session back to its previous generation on purpose, lowers the
// floor: the restored blob opens, now and after a restart.
func TestRollbackRecoverIsDeliberate(t *testing.T) {
	ctx := context.Background()
	dir, fresh := rollbackVault(t)
	v := openDir(t, dir, WithFreshnessFile(fresh))
	seal(t, v, "s", "one")
	seal(t, v, "s", "two")
	// Damage that reaches the vault (the file backend's own checksums
	// catch damage done to the file: layout 2 then reads the slot before
	// it): the current blob stored with its last bit flipped, "one" kept
	// as the previous generation.
	fb := dirBackend(t, dir)
	blob, _, err := fb.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	prev, _, err := fb.Previous(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-1] ^= 1
	for _, b := range [][]byte{prev, blob} {
		if _, err := fb.Put(ctx, "s", b, backends.Any); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := v.Recover(ctx, "s"); err != nil || !ok {
		t.Fatalf("Recover = %v, %v", ok, err)
	}
	if got := open(t, v, "s"); got != "one" {
		t.Fatal(got)
	}
	if got := open(t, openDir(t, dir, WithFreshnessFile(fresh)), "s"); got != "one" {
		t.Fatal(got)
	}
}

// TestRollbackHeader puts older headers back in place. After a rotation
// the header before it (a lower generation) is refused, by the Vault that
// saw the newer one (when it re-reads the header) and at Open with the
// freshness file. After a passphrase change the older header has the same
// generation: no one can tell it from a newer one, and it opens (with the
// old passphrase: the limit SECURITY.md states). Since the purge leaves
// no older header in storage, the attacker needs a copy of their own.
func TestRollbackHeader(t *testing.T) {
	ctx := context.Background()
	f := figures.New("vault/rollback-header")
	f.Declare("refused", "opened_without_record", "passwd_undetected")
	defer f.Report(t)
	t.Run("after rotate-key", func(t *testing.T) {
		dir, fresh := rollbackVault(t)
		v := openDir(t, dir, WithFreshnessFile(fresh))
		seal(t, v, "s", "x")
		hdr := filepath.Join(dir, "vault.hdr")
		old := readFile(t, hdr)
		if err := v.RotateKey(ctx, nil); err != nil {
			t.Fatal(err)
		}
		writeFile(t, hdr, old)
		// The Vault that saw generation 2 re-reads the header on its
		// next header-locked write.
		_, err := v.Store("new").Seal(ctx, []byte("x"), backends.Absent)
		wantErr(t, err, ErrRollback, "seal after the header went back")
		f.Add("refused", 1)
		b, err := file.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_, err = Open(ctx, b, cheap(testPass, WithFreshnessFile(fresh))...)
		wantErr(t, err, ErrRollback, "Open with the freshness file")
		f.Add("refused", 1)
		// Without the file: the old header opens, but the sessions,
		// sealed under generation 2, do not.
		v2 := mustOpen(t, b, cheap(testPass)...)
		if _, _, err := v2.Store("s").Open(ctx); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("session under a header rolled back without the file: %v, want ErrCorrupt", err)
		}
		f.Add("opened_without_record", 1)
	})
	t.Run("after passwd: not detectable", func(t *testing.T) {
		dir, fresh := rollbackVault(t)
		v := openDir(t, dir, WithFreshnessFile(fresh))
		hdr := filepath.Join(dir, "vault.hdr")
		old := readFile(t, hdr)
		if err := v.ChangePassphrase(ctx, []byte("new"), cheapParams); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, ".vault.hdr.prev")); err == nil && string(readFile(t, filepath.Join(dir, ".vault.hdr.prev"))) == string(old) {
			t.Fatal("the storage still keeps the header from before the change")
		}
		writeFile(t, hdr, old)
		openDir(t, dir, WithFreshnessFile(fresh)) // opens with the old passphrase
		f.Add("passwd_undetected", 1)
	})
}

// TestRollbackFreshnessFileOfAnotherVault refuses a vault whose id is not
// the one the freshness file records: the vault was replaced.
func TestRollbackFreshnessFileOfAnotherVault(t *testing.T) {
	_, fresh := rollbackVault(t)
	other, _ := rollbackVault(t)
	b, err := file.New(other)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = Open(context.Background(), b, cheap(testPass, WithFreshnessFile(fresh))...)
	wantErr(t, err, ErrRollback, "Open with another vault's freshness file")
	f := figures.New("vault/rollback-other-vault")
	f.Add("refused", 1)
	f.Report(t)
}

// TestEnvelopeV1AfterV2 checks that a version 1 envelope still opens,
// and that one put back over a version 2 blob the Vault has seen is a
// rollback (version 1 has counter 0).
func TestEnvelopeV1AfterV2(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	v.mu.RLock()
	g := v.current()
	v1 := sealEnvelopeNonce(nil, g.aead, &v.hdr.id, 1, g.n, 0, "s", []byte("v1"), nil)
	v.mu.RUnlock()
	if _, err := b.Put(ctx, "s", v1, backends.Absent); err != nil {
		t.Fatal(err)
	}
	if got := open(t, v, "s"); got != "v1" {
		t.Fatal(got)
	}
	seal(t, v, "s", "v2")
	blob, _, _ := b.Get(ctx, "s")
	if env, err := parseEnvelope("s", blob); err != nil || env.version != 2 || env.counter == 0 {
		t.Fatalf("new seal: version %d counter %d, %v", env.version, env.counter, err)
	}
	if _, err := b.Put(ctx, "s", v1, backends.Any); err != nil {
		t.Fatal(err)
	}
	wantRollback(t, v, "s", "a version 1 blob after a version 2 one")
	f := figures.New("vault/rollback-v1-after-v2")
	f.Add("refused", 1)
	f.Report(t)
}

// TestGoldenEnvelopeVersions checks which envelope version each golden
// vault's sessions are: version 1 files keep opening (TestGolden), and
// the version 2 files are version 2.
func TestGoldenEnvelopeVersions(t *testing.T) {
	for dir, want := range map[string]uint16{"v1/passphrase": 1, "envelope-v2/passphrase": 2} {
		blob := readFile(t, filepath.Join("testdata", "golden", dir, "session.trader-1"))
		env, err := parseEnvelope("trader-1", blob)
		if err != nil || env.version != want {
			t.Errorf("%s: envelope version %d (%v), want %d", dir, env.version, err, want)
		}
		if want == 2 && env.counter == 0 {
			t.Errorf("%s: counter 0", dir)
		}
	}
}

// TestRollbackClockBehind: a blob written by a machine whose clock runs
// an hour ahead, then overwritten unconditionally (Seal with Any) by one
// whose clock does not: a reader that saw the first takes the second for
// the newer, as it is (the unconditional write seals above the counter it
// replaces).
func TestRollbackClockBehind(t *testing.T) {
	ctx := context.Background()
	v, b := newVault(t)
	reader := mustOpen(t, b, cheap(testPass)...)
	v.mu.RLock()
	g := v.current()
	ahead := sealEnvelopeNonce(nil, g.aead, &v.hdr.id, 2, g.n, uint64(time.Now().Add(time.Hour).UnixNano()), "s", []byte("ahead"), nil)
	v.mu.RUnlock()
	if _, err := b.Put(ctx, "s", ahead, backends.Absent); err != nil {
		t.Fatal(err)
	}
	if got := open(t, reader, "s"); got != "ahead" {
		t.Fatal(got)
	}
	seal(t, v, "s", "later") // Any
	if got := open(t, reader, "s"); got != "later" {
		t.Fatalf("after an unconditional write: %q", got)
	}
}

// TestFreshnessFileHostile: a freshness file far over its limit (sparse,
// 4 GiB) or not a record is refused as corrupt, and reading it costs at
// most the limit.
func TestFreshnessFileHostile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = loadFresh(big)
	runtime.ReadMemStats(&after)
	wantErr(t, err, ErrCorrupt, "a 4 GiB freshness file")
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("reading a 4 GiB freshness file allocated %d bytes, want at most %d", got, 1<<20)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte(`{"format":"something else"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadFresh(junk)
	wantErr(t, err, ErrCorrupt, "a freshness file that is not a record")
}

// lostReplyBackend deletes for real and then reports ErrNotFound, as a
// network backend does when the reply to a delete is lost and its retry
// finds nothing left (a real Redis cannot be made to drop that one reply
// on demand).
type lostReplyBackend struct{ *memory.Backend }

func (b lostReplyBackend) Delete(ctx context.Context, name string, ifVersion backends.Version) error {
	if err := b.Backend.Delete(ctx, name, ifVersion); err != nil {
		return err
	}
	return b.Backend.Delete(ctx, name, ifVersion) // the retry: not found
}

// TestRollbackDeletedDespiteNotFound: a Delete the backend reports as not
// found after deleting (a retry after a lost reply) still raises the
// session's floor: the deleted blob put back is refused with ErrRollback,
// and the Delete reports ErrNotFound as the backend did.
func TestRollbackDeletedDespiteNotFound(t *testing.T) {
	ctx := context.Background()
	mb := memory.New()
	b := lostReplyBackend{mb}
	v, err := Create(ctx, b, cheap(testPass)...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	seal(t, v, "s", "one")
	seal(t, v, "s", "two")
	// The blob deleted: the newest this Vault saw, so only the floor the
	// Delete raises can refuse it.
	old, _, err := mb.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Store("s").Delete(ctx, backends.Any); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete through a lost reply: %v, want ErrNotFound", err)
	}
	if _, _, err := mb.Get(ctx, "s"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("the blob is still stored: %v", err)
	}
	if _, err := mb.Put(ctx, "s", old, backends.Absent); err != nil {
		t.Fatal(err)
	}
	wantRollback(t, v, "s", "the Vault whose Delete was reported not found")
}
