package benchmarks

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// Where the time of a save and of a load goes: each layer of ours raced
// against the layer below it, so that a ratio that misses its goal points
// at the layer that adds the cost.

// writeKeepPrev is the physical durable write plus what the file backend
// adds to keep the previous generation: unlink the old previous file,
// hard-link the current file as the previous one, then rename the temp file
// over the current one; the one folder fsync covers all three.
func writeKeepPrev(tb testing.TB, payload []byte) contender {
	tb.Helper()
	dir := tb.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	cur := filepath.Join(dir, "session.sealed")
	prev := filepath.Join(dir, ".session.sealed.prev")
	return contender{name: "physical+prev", op: func(i int) error {
		tmp := filepath.Join(dir, ".session.sealed.tmp-"+strconv.Itoa(i))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(payload); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Remove(prev); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.Link(cur, prev); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.Rename(tmp, cur); err != nil {
			return err
		}
		return d.Sync()
	}}
}

// backendPut is the file backend alone: a compare-and-set Put of a blob
// of the sealed session's size.
func backendPut(tb testing.TB, blob []byte) contender {
	tb.Helper()
	be, err := file.New(vaultDir(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { be.Close() })
	ver := backends.Absent
	return contender{name: "backend-put", op: func(int) error {
		v, err := be.Put(context.Background(), "session", blob, ver)
		ver = v
		return err
	}}
}

// backendGet is the file backend alone: Get of a stored blob.
func backendGet(tb testing.TB, blob []byte) contender {
	tb.Helper()
	be, err := file.New(vaultDir(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { be.Close() })
	if _, err := be.Put(context.Background(), "session", blob, backends.Absent); err != nil {
		tb.Fatal(err)
	}
	return contender{name: "backend-get", op: func(int) error {
		got, _, err := be.Get(context.Background(), "session")
		if err != nil {
			return err
		}
		return same(got, blob)
	}}
}

// sealedSize is the size of the realistic session once sealed.
func sealedBlob(tb testing.TB, payload []byte) []byte {
	tb.Helper()
	v := openFileVault(tb, vaultDir(tb), true, setupParams)
	blob, err := v.SealSession("session", payload)
	if err != nil {
		tb.Fatal(err)
	}
	return blob
}

// BenchmarkSaveLayers races, on the realistic 2 KiB session: the vault's
// Store.Seal (ours), the file backend's Put of a blob of the sealed size,
// the physical write plus the previous-generation link, and the physical
// write. Each "x-NAME" is ours over NAME; the steps between them are the
// cost of each layer.
func BenchmarkSaveLayers(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	blob := sealedBlob(b, payload)
	race(b, true,
		oursSave(b, payload),
		backendPut(b, blob),
		writeKeepPrev(b, blob),
		physicalWrite(b, blob),
	)
}

// BenchmarkLoadLayers races the vault's Store.Open (ours), the file
// backend's Get, and os.ReadFile of the sealed blob.
func BenchmarkLoadLayers(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	blob := sealedBlob(b, payload)
	race(b, true,
		oursLoad(b, payload),
		backendGet(b, blob),
		physicalRead(b, blob),
	)
}
