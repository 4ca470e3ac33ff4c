package benchmarks

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/99designs/keyring"
	"golang.org/x/crypto/chacha20poly1305"
)

// The baselines: the same job (store one session and read it back) done the
// ways a user could pick instead of this module. Each returns a contender
// whose op writes payload and reads it back, checking the bytes.

// physical is the physical limit of a durable save: RawDir.WriteDurable (temp
// file O_EXCL 0600, write, fsync, close, rename, folder fsync) and a plain
// os.ReadFile of the same bytes.
func physical(tb testing.TB, payload []byte) contender {
	tb.Helper()
	d, err := OpenRawDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return contender{name: "physical", op: func(int) error {
		if err := d.WriteDurable("session", payload); err != nil {
			return err
		}
		got, err := d.ReadFile("session")
		if err != nil {
			return err
		}
		return same(got, payload)
	}}
}

// physicalWrite is the physical baseline without the read back.
func physicalWrite(tb testing.TB, payload []byte) contender {
	tb.Helper()
	d, err := OpenRawDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return contender{name: "physical", op: func(int) error {
		return d.WriteDurable("session", payload)
	}}
}

// physicalRead is a plain os.ReadFile of payload.
func physicalRead(tb testing.TB, payload []byte) contender {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "session")
	if err := os.WriteFile(p, payload, 0o600); err != nil {
		tb.Fatal(err)
	}
	return contender{name: "readfile", op: func(int) error {
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return same(got, payload)
	}}
}

// authRead is the leanest authenticated read of payload: os.ReadFile of
// payload sealed as one XChaCha20-Poly1305 message (nonce first, no
// header, no version, no rollback check) and one Open of it, in place, on
// one core. Any load that decrypts what it reads costs at least this
// much of one core; what it costs beyond os.ReadFile is the decryption.
func authRead(tb testing.TB, payload []byte) contender {
	tb.Helper()
	return authReadAt(tb, payload, filepath.Join(tb.TempDir(), "sealed"))
}

// authReadAt is authRead with the sealed file at p.
func authReadAt(tb testing.TB, payload []byte, p string) contender {
	tb.Helper()
	aead := randomAEAD(tb)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(nonce)
	if err := os.WriteFile(p, aead.Seal(nonce, nonce, payload, nil), 0o600); err != nil {
		tb.Fatal(err)
	}
	return contender{name: "readopen", op: func(int) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n := chacha20poly1305.NonceSizeX
		got, err := aead.Open(b[n:n], b[:n], b[n:], nil)
		if err != nil {
			return err
		}
		return same(got, payload)
	}}
}

// randomAEAD is XChaCha20-Poly1305 under a fresh random key.
func randomAEAD(tb testing.TB) cipher.AEAD {
	tb.Helper()
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		tb.Fatal(err)
	}
	return aead
}

// authReadParallel is authRead on every core: payload sealed as
// independent XChaCha20-Poly1305 messages of authChunk bytes (nonce i is
// the random base nonce with its last 8 bytes xored with i), read with
// one os.ReadFile, then opened in place by runtime.GOMAXPROCS goroutines,
// each taking every GOMAXPROCS-th message. No format: a timing baseline
// only (nothing binds the messages together).
func authReadParallel(tb testing.TB, payload []byte) contender {
	tb.Helper()
	return authReadParallelAt(tb, payload, filepath.Join(tb.TempDir(), "sealed"))
}

// authReadParallelAt is authReadParallel with the sealed file at p.
func authReadParallelAt(tb testing.TB, payload []byte, p string) contender {
	tb.Helper()
	aead := randomAEAD(tb)
	var base [chacha20poly1305.NonceSizeX]byte
	rand.Read(base[:])
	nonceOf := func(i int) [chacha20poly1305.NonceSizeX]byte {
		n := base
		for k := range 8 {
			n[len(n)-1-k] ^= byte(i >> (8 * k))
		}
		return n
	}
	var sealed []byte
	for i, off := 0, 0; off < len(payload); i, off = i+1, off+authChunk {
		n := nonceOf(i)
		sealed = aead.Seal(sealed, n[:], payload[off:min(off+authChunk, len(payload))], nil)
	}
	if err := os.WriteFile(p, sealed, 0o600); err != nil {
		tb.Fatal(err)
	}
	workers := runtime.GOMAXPROCS(0)
	return contender{name: "readopen-par", op: func(int) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sc := authChunk + aead.Overhead()
		msgs := (len(b) + sc - 1) / sc
		errs := make(chan error, workers)
		for w := range workers {
			go func() {
				var err error
				for i := w; i < msgs && err == nil; i += workers {
					n := nonceOf(i)
					c := b[i*sc : min((i+1)*sc, len(b))]
					_, err = aead.Open(c[:0], n[:], c, nil)
				}
				errs <- err
			}()
		}
		for range workers {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return err
		}
		// Each message's plaintext is where it was opened.
		for i := range msgs {
			want := payload[i*authChunk : min((i+1)*authChunk, len(payload))]
			if err := same(b[i*sc:i*sc+len(want)], want); err != nil {
				return err
			}
		}
		return nil
	}}
}

// authChunk is the message size of authReadParallel: the chunk size of
// envelope version 3 (vault/chunked.go), 64 KiB.
const authChunk = 64 << 10

// axiomtrade is what axiomtrade-rs does: the JSON written in place with
// std::fs::write (no temp file, no fsync, no rename: neither atomic nor
// durable) and read back.
func axiomtrade(tb testing.TB, payload []byte) contender {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), ".axiom_session.json")
	return contender{name: "axiomtrade-rs", op: func(int) error {
		if err := WritePlain(p, payload); err != nil {
			return err
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return same(got, payload)
	}}
}

// ninetyNineFile is 99designs/keyring's FileBackend, Set then Get of the
// session as one item. Read from its source (keyring v1.2.2 file.go, with
// dvsekhvalnov/jose2go v1.5.0): Set JSON-encodes the item, encrypts it as a
// JWE with PBES2-HS256+A128KW, which runs PBKDF2-HMAC-SHA256 with 8192
// iterations and a fresh salt on every call, and writes it with os.WriteFile
// (truncate in place: no temp file, no fsync, no rename; neither atomic nor
// durable); Get reads the file and runs PBKDF2 again to decrypt. So one
// save and load costs two PBKDF2 runs and no fsync.
func ninetyNineFile(tb testing.TB, payload []byte) contender {
	tb.Helper()
	kr, err := keyring.Open(keyring.Config{
		ServiceName:      "sessionvault-bench",
		AllowedBackends:  []keyring.BackendType{keyring.FileBackend},
		FileDir:          tb.TempDir(),
		FilePasswordFunc: keyring.FixedStringPrompt("correct horse battery staple"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return contender{name: "99designs-file", op: func(int) error {
		if err := kr.Set(keyring.Item{Key: "session", Data: payload}); err != nil {
			return err
		}
		it, err := kr.Get("session")
		if err != nil {
			return err
		}
		return same(it.Data, payload)
	}}
}

func same(got, want []byte) error {
	if !bytes.Equal(got, want) {
		return fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(want))
	}
	return nil
}

// baselines lists every baseline of the save-and-load job by name.
var baselines = []struct {
	name string
	mk   func(testing.TB, []byte) contender
}{
	{"physical", physical},
	{"physical-write", physicalWrite},
	{"readfile", physicalRead},
	{"axiomtrade-rs", axiomtrade},
	{"99designs-file", ninetyNineFile},
}

// BenchmarkBaseline times each baseline alone on the realistic 2 KiB
// session: ns/op, B/op and allocs/op of that baseline only.
func BenchmarkBaseline(b *testing.B) {
	payload := SessionJSON(RealisticSize)
	for _, bl := range baselines {
		b.Run(bl.name, func(b *testing.B) {
			runAlone(b, bl.mk(b, payload), len(payload))
		})
	}
}

// runAlone times c alone, b.N times, after one untimed call.
func runAlone(b *testing.B, c contender, size int) {
	b.Helper()
	if err := c.op(0); err != nil {
		b.Fatalf("%s: %v", c.name, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		if err := c.op(i); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
	}
}
