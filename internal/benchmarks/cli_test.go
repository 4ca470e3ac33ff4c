package benchmarks

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/kdf"
)

// The operator's commands over vaults of 10 to 1,000 sessions (10,000 with
// SESSIONVAULT_BENCH_LARGE=1), timed as an operator runs them: the real
// vaultctl binary, built once per benchmark process, started per op.

var vaultctlBin struct {
	once sync.Once
	path string
	err  error
}

// vaultctl returns the path of a vaultctl built from this module.
func vaultctl(tb testing.TB) string {
	tb.Helper()
	vaultctlBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "sessionvault-bench-bin-")
		if err != nil {
			vaultctlBin.err = err
			return
		}
		exe := filepath.Join(dir, "vaultctl")
		if runtime.GOOS == "windows" {
			exe += ".exe"
		}
		out, err := exec.Command("go", "build", "-o", exe, "github.com/sessionvault/sessionvault/cmd/vaultctl").CombinedOutput()
		if err != nil {
			vaultctlBin.err = fmt.Errorf("go build vaultctl: %v\n%s", err, out)
			return
		}
		vaultctlBin.path = exe
	})
	if vaultctlBin.err != nil {
		tb.Fatal(vaultctlBin.err)
	}
	return vaultctlBin.path
}

func removeVaultctl() {
	if vaultctlBin.path != "" {
		os.RemoveAll(filepath.Dir(vaultctlBin.path))
	}
}

// passphraseFile writes the benchmark passphrase to a 0600 file.
func passphraseFile(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "passphrase")
	if err := os.WriteFile(p, []byte(benchPassphrase+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// vaultctlOp runs `vaultctl --dir DIR --passphrase-file F ARGS...` and
// fails on a non-zero exit. It adds each run's CPU time (user + system, from
// the child's rusage) to *cpu: on a machine shared with other work, CPU
// time moves much less than wall time.
func vaultctlOp(tb testing.TB, name, dir string, cpu *time.Duration, args ...string) contender {
	tb.Helper()
	bin, pf := vaultctl(tb), passphraseFile(tb)
	full := append([]string{"--dir", dir, "--passphrase-file", pf}, args...)
	return contender{name: name, op: func(i int) error {
		cmd := exec.Command(bin, full...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = nil, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("vaultctl %v: %v: %s", args, err, stderr.Bytes())
		}
		if i > 0 { // not the warm-up run
			*cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		return nil
	}}
}

// readFloor is the least work of a command that opens every session: one
// argon2id run at the vault's parameters and one os.ReadFile per session
// (n files of the sealed size, in a folder of their own).
func readFloor(tb testing.TB, n int) contender {
	tb.Helper()
	dir := tb.TempDir()
	blob := make([]byte, len(sealedBlob(tb, SessionJSON(RealisticSize))))
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, sessionName(i)), blob, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	salt := kdf.NewSalt()
	return contender{name: "floor", op: func(int) error {
		k, err := kdf.Derive([]byte(benchPassphrase), salt, setupParams)
		if err != nil {
			return err
		}
		k.Destroy()
		for i := range n {
			if _, err := os.ReadFile(filepath.Join(dir, sessionName(i))); err != nil {
				return err
			}
		}
		return nil
	}}
}

// writeFloor is the least work of re-sealing every session: one argon2id
// run and n physical durable writes of the sealed size.
func writeFloor(tb testing.TB, n int) contender {
	tb.Helper()
	d, err := OpenRawDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	blob := make([]byte, len(sealedBlob(tb, SessionJSON(RealisticSize))))
	salt := kdf.NewSalt()
	return contender{name: "floor", op: func(int) error {
		k, err := kdf.Derive([]byte(benchPassphrase), salt, setupParams)
		if err != nil {
			return err
		}
		k.Destroy()
		for i := range n {
			if err := d.WriteDurable(sessionName(i), blob); err != nil {
				return err
			}
		}
		return nil
	}}
}

// cliBench races vaultctl ARGS over each fixture size against floor, and
// reports the time per session and vaultctl's CPU time per run.
func cliBench(b *testing.B, args []string, floor func(testing.TB, int) contender) {
	for _, n := range sessionCounts() {
		b.Run(fmt.Sprint("sessions=", n), func(b *testing.B) {
			dir := fixtureVault(b, n)
			var cpu time.Duration
			res := race(b, true, vaultctlOp(b, "vaultctl", dir, &cpu, args...), floor(b, n))
			b.ReportMetric(res[0].mean(b.N)/float64(n), "ns/session")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkStatus runs `vaultctl status` (open the vault, open and
// summarize every session), raced against one KDF run plus one read per
// session (x-floor).
func BenchmarkStatus(b *testing.B) { cliBench(b, []string{"status"}, readFloor) }

// BenchmarkVerify runs `vaultctl verify` (open every session, check
// permissions, symlinks and KDF policy), raced against the same floor.
func BenchmarkVerify(b *testing.B) { cliBench(b, []string{"verify"}, readFloor) }

// BenchmarkRotateKey runs `vaultctl rotate-key` (new data key, re-seal
// every session durably, verify, drop the old key), raced against one KDF
// run plus one physical durable write per session (x-floor; issue 5's goal
// at 1,000 sessions: 1.3).
func BenchmarkRotateKey(b *testing.B) { cliBench(b, []string{"rotate-key"}, writeFloor) }
