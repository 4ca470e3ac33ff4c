package benchmarks

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/reexec"
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

// The floors are what a command that opens every session (status, verify)
// or re-seals every session (rotate-key) cannot avoid doing, run the way
// vaultctl runs: a fresh process (this test binary again, in a role) that
// derives the key once at the vault's parameters, which a fresh process
// pays page faults for, then reads, or durably writes, one file of the
// sealed session's size per session. x-floor is then vaultctl's own cost.

// floorRead derives a key at the parameters in args[2:5], then reads the
// args[1] files named by sessionName in folder args[0].
func floorRead(args []string) error {
	dir, n, p, err := floorArgs(args)
	if err != nil {
		return err
	}
	k, err := kdf.Derive([]byte(benchPassphrase), kdf.NewSalt(), p)
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
}

// floorWrite derives a key, then durably writes args[1] files of
// args[5] bytes in folder args[0] (RawDir.WriteDurable).
func floorWrite(args []string) error {
	dir, n, p, err := floorArgs(args)
	if err != nil {
		return err
	}
	if len(args) != 6 {
		return fmt.Errorf("want dir n t m p size, got %q", args)
	}
	size, err := strconv.Atoi(args[5])
	if err != nil {
		return err
	}
	k, err := kdf.Derive([]byte(benchPassphrase), kdf.NewSalt(), p)
	if err != nil {
		return err
	}
	k.Destroy()
	d, err := OpenRawDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	blob := make([]byte, size)
	for i := range n {
		if err := d.WriteDurable(sessionName(i), blob); err != nil {
			return err
		}
	}
	return nil
}

func floorArgs(args []string) (dir string, n int, p kdf.Params, err error) {
	if len(args) < 5 {
		return "", 0, p, fmt.Errorf("want dir n t m p, got %q", args)
	}
	if n, err = strconv.Atoi(args[1]); err != nil {
		return "", 0, p, err
	}
	p, err = parseParams(args[2:5])
	return args[0], n, p, err
}

// floorChild is a contender that runs role in a fresh process.
func floorChild(tb testing.TB, role string, args ...string) contender {
	tb.Helper()
	return contender{name: "floor", op: func(int) error {
		c, err := reexec.Start(role, reexec.Options{}, args...)
		if err != nil {
			return err
		}
		if err := c.Wait(); err != nil {
			return fmt.Errorf("%s child: %v: %s", role, err, c.Stderr())
		}
		return nil
	}}
}

// readFloor: a fresh process, one KDF run, n reads of the sealed size.
func readFloor(tb testing.TB, n int) contender {
	tb.Helper()
	dir := tb.TempDir()
	blob := make([]byte, len(sealedBlob(tb, SessionJSON(RealisticSize))))
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, sessionName(i)), blob, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return floorChild(tb, "floor-read", append([]string{dir, strconv.Itoa(n)}, paramsArgs(setupParams)...)...)
}

// writeFloor: a fresh process, one KDF run, n durable writes of the
// sealed size.
func writeFloor(tb testing.TB, n int) contender {
	tb.Helper()
	size := len(sealedBlob(tb, SessionJSON(RealisticSize)))
	args := append([]string{tb.TempDir(), strconv.Itoa(n)}, paramsArgs(setupParams)...)
	return floorChild(tb, "floor-write", append(args, strconv.Itoa(size))...)
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
// summarize every session), raced against a process that runs the KDF once
// and reads one file per session (x-floor).
func BenchmarkStatus(b *testing.B) { cliBench(b, []string{"status"}, readFloor) }

// BenchmarkVerify runs `vaultctl verify` (open every session, check
// permissions, symlinks and KDF policy), raced against the same floor.
func BenchmarkVerify(b *testing.B) { cliBench(b, []string{"verify"}, readFloor) }

// BenchmarkRotateKey runs `vaultctl rotate-key` (new data key, re-seal
// every session durably, verify, drop the old key), raced against a
// process that runs the KDF once and makes one physical durable write per
// session (x-floor; issue 5's goal at 1,000 sessions: 1.3).
func BenchmarkRotateKey(b *testing.B) { cliBench(b, []string{"rotate-key"}, writeFloor) }
