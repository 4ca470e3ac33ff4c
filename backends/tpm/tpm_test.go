//go:build !windows

package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/vault"
)

func newSealer(t testing.TB, dev string, opts ...Option) *Sealer {
	t.Helper()
	s, err := New(dev, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealUnseal(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	s := newSealer(t, sw.Socket)
	kek := make([]byte, 32)
	rand.Read(kek)
	start := time.Now()
	sealed, err := s.Seal(ctx, kek)
	if err != nil {
		t.Fatal(err)
	}
	sealTime := time.Since(start)
	if bytes.Contains(sealed, kek) {
		t.Fatal("the sealed bytes hold the key")
	}
	start = time.Now()
	got, err := s.Unseal(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	unsealTime := time.Since(start)
	t.Logf("sealed bytes: %d; seal %v, unseal %v", len(sealed), sealTime, unsealTime)
	if !bytes.Equal(got, kek) {
		t.Fatal("unsealed another key")
	}
	f := figures.New("tpm/seal")
	f.Add("seal_us", sealTime.Microseconds())
	f.Add("unseal_us", unsealTime.Microseconds())
	f.Add("sealed_bytes", int64(len(sealed)))
	defer f.Report(t)
	in, err := Describe(sealed)
	if err != nil || len(in.PCRs) != 0 {
		t.Fatalf("Describe: %+v, %v", in, err)
	}
}

func TestPCRBinding(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	// PCR 16 is the debug PCR: any locality may extend (and reset) it.
	s := newSealer(t, sw.Socket, WithPCRs(16, 7))
	kek := make([]byte, 32)
	rand.Read(kek)
	sealed, err := s.Seal(ctx, kek)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := Describe(sealed); err != nil || len(in.PCRs) != 2 || in.PCRs[0] != 7 || in.PCRs[1] != 16 {
		t.Fatalf("Describe: %+v, %v", in, err)
	}
	// A Sealer without WithPCRs unseals it: the list is in the bytes.
	got, err := newSealer(t, sw.Socket).Unseal(ctx, sealed)
	if err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("unseal before the PCR changed: %v", err)
	}
	must(t, sw.ExtendPCR(16))
	_, err = s.Unseal(ctx, sealed)
	if !errors.Is(err, ErrPCRMismatch) || !errors.Is(err, vault.ErrWrongKey) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("unseal after extending PCR 16: %v, want ErrPCRMismatch", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Device != sw.Socket {
		t.Fatalf("%v: not a *tpm.Error naming the device", err)
	}
	// A key sealed now, to the new PCR value, opens.
	sealed2, err := s.Seal(ctx, kek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unseal(ctx, sealed2); err != nil {
		t.Fatal(err)
	}
}

func TestWipedTPM(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, filepath.Join(t.TempDir(), "state"))
	s := newSealer(t, sw.Socket)
	kek := make([]byte, 32)
	rand.Read(kek)
	sealed, err := s.Seal(ctx, kek)
	if err != nil {
		t.Fatal(err)
	}
	// Restarted with its state: the key survives (a reboot).
	sw.Stop()
	must(t, sw.Restart())
	if _, err := s.Unseal(ctx, sealed); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	must(t, sw.Wipe())
	_, err = s.Unseal(ctx, sealed)
	if !errors.Is(err, ErrNotThisTPM) || !errors.Is(err, vault.ErrWrongKey) {
		t.Fatalf("after a wipe: %v, want ErrNotThisTPM", err)
	}
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := figures.New("tpm/unavailable")
	var fastest time.Duration
	defer func() {
		f.Add("fastest_us", fastest.Microseconds())
		f.Report(t)
	}()
	for name, dev := range map[string]string{
		"missing":     filepath.Join(dir, "no-such-tpm"),
		"not-a-tpm":   dir,
		"dead-socket": deadSocket(t),
	} {
		t.Run(name, func(t *testing.T) {
			s := newSealer(t, dev)
			start := time.Now()
			_, err := s.Unseal(ctx, validLooking(t))
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, vault.ErrWrongKey) {
				t.Fatalf("Unseal: %v, want ErrUnavailable", err)
			}
			d := time.Since(start)
			if d > time.Second {
				t.Fatalf("Unseal took %v to fail", d)
			}
			t.Logf("%s: ErrUnavailable in %v", name, d)
			f.Inc("cases")
			f.Max("slowest_us", d.Microseconds())
			if fastest == 0 || d < fastest {
				fastest = d
			}
			if _, err := s.Seal(ctx, make([]byte, 32)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Seal: %v, want ErrUnavailable", err)
			}
			if err := s.Probe(ctx); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Probe: %v, want ErrUnavailable", err)
			}
		})
	}
}

// deadSocket returns the path of a Unix socket nobody listens on (the
// socket file a crashed swtpm leaves).
func deadSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dead")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "s")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	return p
}

// validLooking returns sealed bytes that parse (an empty-PCR header and
// two small areas), so Unseal gets as far as the device.
func validLooking(t *testing.T) []byte {
	t.Helper()
	b := []byte{sealedVersion, 0, 0, 0, 0, 1, 0xaa, 0, 1, 0xbb}
	if _, err := parseSealed(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHungTPM: a TPM that accepts the connection and never answers ends
// at the caller's deadline with ErrUnavailable.
func TestHungTPM(t *testing.T) {
	dir, err := os.MkdirTemp("", "hung")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "s")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err = newSealer(t, p).Unseal(ctx, validLooking(t))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
	d := time.Since(start)
	if d > 2*time.Second {
		t.Fatalf("returned after %v", d)
	}
	f := figures.New("tpm/hung")
	f.Add("deadline_ms", deadline.Milliseconds())
	f.Add("returned_ms", d.Milliseconds())
	f.Report(t)
}

func TestParseSealedHostile(t *testing.T) {
	f := figures.New("tpm/parse-hostile")
	f.Declare("inputs", "malformed")
	defer f.Report(t)
	for name, b := range map[string][]byte{
		"empty":         {},
		"short":         {1, 0, 0},
		"version":       {2, 0, 0, 0, 0, 1, 0xaa, 0, 1, 0xbb},
		"no private":    {1, 0, 0, 0, 0, 1, 0xaa},
		"zero public":   {1, 0, 0, 0, 0, 0, 0, 1, 0xbb},
		"public past":   {1, 0, 0, 0, 0xff, 0xff, 0xaa},
		"public large":  append([]byte{1, 0, 0, 0, 0x02, 0x01}, make([]byte, 513+3)...),
		"trailing":      {1, 0, 0, 0, 0, 1, 0xaa, 0, 1, 0xbb, 0},
		"too many PCRs": {1, 0xff, 0xff, 0, 0, 1, 0xaa, 0, 1, 0xbb},
	} {
		f.Inc("inputs")
		_, err := parseSealed(b)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, vault.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		} else {
			f.Inc("malformed")
		}
		if _, err := Describe(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Describe %s: %v", name, err)
		}
	}
}

func TestNewRefusesBadPCRs(t *testing.T) {
	for _, pcrs := range [][]int{{-1}, {24}, {7, 7}, {0, 1, 2, 3, 4, 5, 6, 7, 8}} {
		if _, err := New("/dev/null", WithPCRs(pcrs...)); err == nil {
			t.Errorf("New accepted PCRs %v", pcrs)
		}
	}
	s, err := New("")
	if err != nil || s.Device() != DefaultDevice {
		t.Fatalf("New(\"\"): %v, %v", s, err)
	}
}
