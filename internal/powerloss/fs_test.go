//go:build linux

package powerloss

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/reexec"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	reexec.Main(m, map[string]reexec.Func{
		"flocker": flockerChild,
		"writer":  writerChild,
	})
}

// writeFile writes b to path, fsyncing the file when syncFile is set.
func writeFile(t *testing.T, path string, b []byte, syncFile bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if syncFile {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func cut(t *testing.T, f *FS) CutReport {
	t.Helper()
	rep, err := f.Cut()
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func readOrAbsent(t *testing.T, path string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// TestSyncedFileSurvivesCut: a file whose data and folder entry were
// synced is there after a cut, in a sub-folder too; the fsyncs are
// counted.
func TestSyncedFileSurvivesCut(t *testing.T) {
	f := Mount(t, Options{Torn: true})
	sub := filepath.Join(f.Dir(), "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	syncDir(t, f.Dir())
	writeFile(t, filepath.Join(sub, "a"), []byte("durable"), true)
	syncDir(t, sub)
	if got := f.Syncs(); got != 3 {
		t.Errorf("Syncs = %d, want 3", got)
	}
	cut(t, f)
	if got, ok := readOrAbsent(t, filepath.Join(sub, "a")); !ok || got != "durable" {
		t.Fatalf("after the cut: %q (present %v), want %q", got, ok, "durable")
	}
	st, err := os.Stat(sub)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("sub: %v %v, want a 0700 folder", st, err)
	}
}

// TestUnsyncedDataLost: data written but not fsynced is lost, whether
// the file is old (it returns to its durable content and size) or new
// (its durable name comes back empty), and a name never synced vanishes.
func TestUnsyncedDataLost(t *testing.T) {
	f := Mount(t, Options{})
	old, fresh, unnamed := filepath.Join(f.Dir(), "old"), filepath.Join(f.Dir(), "fresh"), filepath.Join(f.Dir(), "unnamed")
	writeFile(t, old, []byte("old content, durable"), true)
	syncDir(t, f.Dir())
	writeFile(t, old, []byte("new"), false)            // shrinks, not synced
	writeFile(t, fresh, []byte("never synced"), false) // its name is synced below
	syncDir(t, f.Dir())
	writeFile(t, unnamed, []byte("synced data, unsynced name"), true)
	rep := cut(t, f)
	if got, _ := readOrAbsent(t, old); got != "old content, durable" {
		t.Errorf("old = %q, want its durable content", got)
	}
	if got, ok := readOrAbsent(t, fresh); !ok || got != "" {
		t.Errorf("fresh = %q (present %v), want an empty file", got, ok)
	}
	if _, ok := readOrAbsent(t, unnamed); ok {
		t.Errorf("unnamed survived the cut, but its folder was not synced after its create")
	}
	if rep.Files != 2 || rep.Dirs != 1 {
		t.Errorf("CutReport = %+v, want 2 files and 1 folder reverted", rep)
	}
}

// TestUnsyncedRenameUndone: a rename not followed by a folder fsync is
// undone by a cut (the target holds its old content, the source name is
// back), and done for good when the folder was synced.
func TestUnsyncedRenameUndone(t *testing.T) {
	f := Mount(t, Options{Torn: true})
	target, tmp := filepath.Join(f.Dir(), "target"), filepath.Join(f.Dir(), ".tmp")
	writeFile(t, target, []byte("v1"), true)
	writeFile(t, tmp, []byte("v2"), true)
	syncDir(t, f.Dir())
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	cut(t, f)
	if got, _ := readOrAbsent(t, target); got != "v1" {
		t.Errorf("target = %q after an unsynced rename, want v1", got)
	}
	if got, ok := readOrAbsent(t, tmp); !ok || got != "v2" {
		t.Errorf("tmp = %q (present %v), want v2 back under its old name", got, ok)
	}
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	syncDir(t, f.Dir())
	cut(t, f)
	if got, _ := readOrAbsent(t, target); got != "v2" {
		t.Errorf("target = %q after a synced rename, want v2", got)
	}
	if _, ok := readOrAbsent(t, tmp); ok {
		t.Error("tmp is back after a synced rename")
	}
}

// TestUnlinkedInodeKeepsItsContent: a durably named file that is
// unlinked (and its inode number perhaps reused by a new file) comes
// back with its own content, hard links included.
func TestUnlinkedInodeKeepsItsContent(t *testing.T) {
	f := Mount(t, Options{})
	a, b := filepath.Join(f.Dir(), "a"), filepath.Join(f.Dir(), "b")
	writeFile(t, a, []byte("A"), true)
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	syncDir(t, f.Dir())
	for _, p := range []string{a, b} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 { // new files, which may reuse the freed inode number
		writeFile(t, filepath.Join(f.Dir(), "n"+string(rune('a'+i))), []byte("other"), true)
	}
	cut(t, f)
	for _, p := range []string{a, b} {
		if got, ok := readOrAbsent(t, p); !ok || got != "A" {
			t.Errorf("%s = %q (present %v), want A", filepath.Base(p), got, ok)
		}
	}
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil || sa.Ino != sb.Ino {
		t.Error("a and b are no longer one inode")
	}
	ents, _ := os.ReadDir(f.Dir())
	if len(ents) != 2 {
		t.Errorf("%d names after the cut, want 2 (the new files were never named durably)", len(ents))
	}
}

// TestTornWritesMixSectors: with Torn, an un-synced overwrite of a
// durable file comes back as a mix of whole old and whole new sectors,
// and the mix does occur.
func TestTornWritesMixSectors(t *testing.T) {
	f := Mount(t, Options{Torn: true, Seed: 1})
	p := filepath.Join(f.Dir(), "f")
	const sectors = 8
	oldB := bytes.Repeat([]byte{'o'}, sectors*SectorSize)
	newB := bytes.Repeat([]byte{'n'}, sectors*SectorSize)
	writeFile(t, p, oldB, true)
	syncDir(t, f.Dir())
	mixes := 0
	for range 20 {
		h, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(newB, 0); err != nil {
			t.Fatal(err)
		}
		h.Close()
		rep := cut(t, f)
		got, _ := readOrAbsent(t, p)
		if len(got) != len(oldB) {
			t.Fatalf("size %d, want %d (old and new have one size)", len(got), len(oldB))
		}
		var o, n int
		for s := 0; s < sectors; s++ {
			sec := got[s*SectorSize : (s+1)*SectorSize]
			switch sec {
			case string(oldB[:SectorSize]):
				o++
			case string(newB[:SectorSize]):
				n++
			default:
				t.Fatalf("sector %d is neither old nor new: torn inside a sector", s)
			}
		}
		if o > 0 && n > 0 {
			mixes++
			if rep.TornFiles != 1 {
				t.Errorf("CutReport.TornFiles = %d for a mixed file", rep.TornFiles)
			}
		}
		writeFile(t, p, oldB, true) // back to the durable start
	}
	if mixes == 0 {
		t.Fatal("20 torn cuts produced no sector mix")
	}
	t.Logf("%d of 20 cuts left a mix of old and new sectors", mixes)
}

// TestFreezeAtSync: the N-th fsync never returns and takes no effect;
// Cut releases it with an error.
func TestFreezeAtSync(t *testing.T) {
	f := Mount(t, Options{})
	p := filepath.Join(f.Dir(), "f")
	writeFile(t, p, []byte("one"), true) // sync 1
	syncDir(t, f.Dir())                  // sync 2
	frozen := f.FreezeAtSync(1)
	errc := make(chan error, 1)
	go func() {
		h, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			errc <- err
			return
		}
		h.Write([]byte("two"))
		err = h.Sync()
		h.Close()
		errc <- err
	}()
	select {
	case <-frozen:
	case err := <-errc:
		t.Fatalf("the frozen fsync returned: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the file system did not freeze")
	}
	select {
	case err := <-errc:
		t.Fatalf("the frozen fsync returned before the cut: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// The parent's own descriptor is open on the mount: Cut must still
	// work (lazily detaching the busy mount).
	cut(t, f)
	if err := <-errc; err == nil {
		t.Error("the frozen fsync succeeded")
	}
	if got, _ := readOrAbsent(t, p); got != "one" {
		t.Errorf("content %q, want the durable one", got)
	}
	if f.Syncs() != 0 {
		t.Errorf("Syncs = %d after a remount, want 0", f.Syncs())
	}
}

// flockerChild takes an exclusive flock on args[0], reports "locked" and
// holds it until killed.
func flockerChild(args []string) error {
	h, err := os.OpenFile(args[0], os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(h.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	reexec.Report("locked")
	select {}
}

// TestFlockExcludesAcrossProcesses: a lock a second, real process holds
// on the mount excludes this one until that process dies.
func TestFlockExcludesAcrossProcesses(t *testing.T) {
	f := Mount(t, Options{})
	p := filepath.Join(f.Dir(), "lock")
	c, err := reexec.Start("flocker", reexec.Options{}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.WaitFor(ctx, "locked"); err != nil {
		c.Kill()
		t.Fatal(err)
	}
	h, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := unix.Flock(int(h.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("flock while another process holds it: %v, want EWOULDBLOCK", err)
	}
	c.Kill()
	c.Wait()
	if err := unix.Flock(int(h.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock after the holder died: %v", err)
	}
}
