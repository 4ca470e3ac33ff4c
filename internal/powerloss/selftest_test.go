//go:build linux

package powerloss

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/reexec"
	"golang.org/x/sys/unix"
)

// The self-test writers keep one record in DIR/state: save S writes
// recordSectors sectors, each holding S, so a torn record is seen.
const recordSectors = 4

func record(s int) []byte {
	sec := fmt.Appendf(nil, "save %08d\n", s)
	sec = append(sec, bytes.Repeat([]byte{'.'}, SectorSize-len(sec)-1)...)
	sec = append(sec, '\n')
	return bytes.Repeat(sec, recordSectors)
}

// parseRecord returns S, or an error if b is not exactly record(S).
func parseRecord(b []byte) (int, error) {
	var s int
	if _, err := fmt.Sscanf(string(b), "save %d\n", &s); err != nil {
		return 0, fmt.Errorf("unreadable record (%d bytes)", len(b))
	}
	if !bytes.Equal(b, record(s)) {
		return s, fmt.Errorf("torn record of save %d (%d bytes)", s, len(b))
	}
	return s, nil
}

// writerChild saves records forever, in the way args[0] names:
//
//	good         write temp, fsync it, rename over state, fsync folder
//	nofilesync   write temp, rename, fsync folder (no file fsync)
//	nodirsync    write temp, fsync it, rename (no folder fsync)
//	renamefirst  write temp, rename, fsync folder, then fsync the file
//
// and reports "ack S" after save S returned. args: way, folder, the
// last save acknowledged.
func writerChild(args []string) error {
	way, dir := args[0], args[1]
	s, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	reexec.Report("ready")
	state, tmp := filepath.Join(dir, "state"), filepath.Join(dir, ".state.tmp")
	for {
		s++
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(record(s)); err != nil {
			return err
		}
		if way == "good" || way == "nodirsync" {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, state); err != nil {
			return err
		}
		if way != "nodirsync" {
			if err := d.Sync(); err != nil {
				return err
			}
		}
		if way == "renamefirst" {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
		reexec.Report("ack %d", s)
	}
}

// runWriter runs the harness on a writer: it counts unreadable or torn
// records and lost acknowledged saves, and never stops early, so that a
// broken writer's losses are all counted.
func runWriter(t *testing.T, way string, cuts int) (lost, unreadable, acked int64) {
	f := Mount(t, Options{Torn: true})
	state := filepath.Join(f.Dir(), "state")
	writeFile(t, state, record(0), true)
	syncDir(t, f.Dir())
	next := 0 // the child continues from the last acknowledged save
	set := Run(t, f, Workload{
		Name:  "powerloss/selftest-" + way,
		Ready: "ready",
		Start: func(int) (*reexec.Child, error) {
			return reexec.Start("writer", reexec.Options{}, way, f.Dir(), strconv.Itoa(next))
		},
		Checks: []Check{{Name: "record", Fn: func(ctx context.Context, r *Round) error {
			ack := r.Acked(next)
			r.Figures.Add("acked_saves", int64(ack-next))
			b, err := os.ReadFile(state)
			s, perr := parseRecord(b)
			if err != nil || perr != nil {
				// Every save of the round is gone (and the older
				// ones with it; only the round's are counted).
				r.Figures.Inc("unreadable")
				s = next
			}
			if s < ack {
				r.Figures.Add("lost_acked", int64(ack-s))
			}
			next = max(ack, s)
			// Start the next round from a sound, durable record.
			if err := writeRecordDurably(f.Dir(), next); err != nil {
				return err
			}
			return nil
		}}},
	}, Config{Cuts: cuts, MaxSyncs: 40, Window: 20 * time.Millisecond})
	set.Declare("acked_saves", "unreadable", "lost_acked")
	set.Report(t)
	if set.Get("failed_checks") != 0 || set.Get("child_errors") != 0 {
		t.Fatalf("the harness itself failed: %s", set)
	}
	if set.Get("acked_saves") == 0 {
		t.Fatal("no save was acknowledged: the run tested nothing")
	}
	return set.Get("lost_acked"), set.Get("unreadable"), set.Get("acked_saves")
}

func writeRecordDurably(dir string, s int) error {
	tmp, state := filepath.Join(dir, ".fix"), filepath.Join(dir, "state")
	if err := os.WriteFile(tmp, record(s), 0o600); err != nil {
		return err
	}
	fd, err := unix.Open(tmp, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = unix.Fsync(fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, state); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

const selfTestCuts = 30

// TestHarnessPassesDurableWriter is the control: a writer that fsyncs
// the file before the rename and the folder after it loses nothing.
func TestHarnessPassesDurableWriter(t *testing.T) {
	lost, unreadable, _ := runWriter(t, "good", selfTestCuts)
	if lost != 0 || unreadable != 0 {
		t.Fatalf("durable writer: lost %d acknowledged saves, %d unreadable records", lost, unreadable)
	}
}

// TestHarnessCatchesMissingFileSync: without the file fsync the renamed
// record has no durable data, and the harness must see it.
func TestHarnessCatchesMissingFileSync(t *testing.T) {
	lost, unreadable, acked := runWriter(t, "nofilesync", selfTestCuts)
	t.Logf("lost %d of %d acknowledged saves, %d unreadable records", lost, acked, unreadable)
	if lost == 0 || unreadable == 0 {
		t.Fatalf("a writer without file fsync went undetected: lost %d, unreadable %d", lost, unreadable)
	}
}

// TestHarnessCatchesMissingFolderSync: without the folder fsync the
// rename is undone, and the acknowledged saves with it.
func TestHarnessCatchesMissingFolderSync(t *testing.T) {
	lost, unreadable, acked := runWriter(t, "nodirsync", selfTestCuts)
	t.Logf("lost %d of %d acknowledged saves, %d unreadable records", lost, acked, unreadable)
	if lost == 0 {
		t.Fatal("a writer without folder fsync went undetected")
	}
}

// TestHarnessCatchesRenameBeforeSync: a writer that makes the rename
// durable before the data loses the record when the power fails between
// the two fsyncs; the cuts by fsync count find that window.
func TestHarnessCatchesRenameBeforeSync(t *testing.T) {
	lost, unreadable, acked := runWriter(t, "renamefirst", selfTestCuts)
	t.Logf("lost %d of %d acknowledged saves, %d unreadable records", lost, acked, unreadable)
	if lost == 0 || unreadable == 0 {
		t.Fatalf("a writer that renames before fsync went undetected: lost %d, unreadable %d", lost, unreadable)
	}
}
