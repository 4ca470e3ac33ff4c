package benchmarks

import (
	"path/filepath"
	"testing"

	"github.com/sessionvault/sessionvault/vault"
)

// inPlaceWrite is the physical limit of a durable update of payload's
// bytes: written over allocated, written blocks, then one fdatasync.
func inPlaceWrite(tb testing.TB, payload []byte) contender {
	tb.Helper()
	f, err := CreateInPlaceFile(filepath.Join(tb.TempDir(), "record"), len(payload))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return contender{name: "inplace", op: func(int) error { return f.WriteDurable(payload) }}
}

// BenchmarkUpdateTokensInPlace races Manager.UpdateTokens with auto-save
// on a file-backed vault (layout 2: the update is one write in place and
// one fdatasync) against the two ways of storing the same sealed bytes
// durably: written in place over allocated blocks + fdatasync
// ("inplace", the physical limit; issue 14's goal: x-inplace <= 1.3) and
// the temp file + fsync + rename + folder fsync recipe ("physical", what
// every write cost before layout 2).
func BenchmarkUpdateTokensInPlace(b *testing.B) {
	c, size := updateTokens(b)
	sealed := SessionJSON(vault.SealedSize(size))
	b.ReportAllocs()
	race(b, true, c, inPlaceWrite(b, sealed), physicalWrite(b, sealed))
}
