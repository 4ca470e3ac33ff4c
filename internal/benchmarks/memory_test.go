package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/vault"
)

// Peak RSS is a property of a whole process, so it is measured in fresh
// child processes (this test binary run again in a role): one that only
// starts, one that runs argon2id once, one that opens a vault.

// childRoles are the roles TestMain dispatches (this file and cli_test.go).
var childRoles = map[string]reexec.Func{
	"rss-idle": func([]string) error { return reportRSS() },
	"rss-kdf":  rssKDF,
	"rss-open": rssOpen,
	// The floors of the vaultctl benchmarks (cli_test.go).
	"floor-read":  floorRead,
	"floor-write": floorWrite,
}

func reportRSS() error {
	rss, err := peakRSS()
	if err != nil {
		return err
	}
	return reexec.Report("rss %d", rss)
}

// paramsArgs and parseParams pass kdf.Params to a child.
func paramsArgs(p kdf.Params) []string {
	return []string{strconv.Itoa(int(p.Time)), strconv.Itoa(int(p.MemoryKiB)), strconv.Itoa(int(p.Threads))}
}

func parseParams(args []string) (kdf.Params, error) {
	if len(args) < 3 {
		return kdf.Params{}, fmt.Errorf("want t m p, got %q", args)
	}
	var v [3]uint64
	for i := range v {
		n, err := strconv.ParseUint(args[i], 10, 32)
		if err != nil {
			return kdf.Params{}, err
		}
		v[i] = n
	}
	return kdf.Params{Time: uint32(v[0]), MemoryKiB: uint32(v[1]), Threads: uint8(v[2])}, nil
}

// rssKDF derives one key with the given parameters: the cost that opening
// a passphrase-protected vault cannot avoid.
func rssKDF(args []string) error {
	p, err := parseParams(args)
	if err != nil {
		return err
	}
	k, err := kdf.Derive([]byte(benchPassphrase), kdf.NewSalt(), p)
	if err != nil {
		return err
	}
	k.Destroy()
	return reportRSS()
}

// childRSS runs role with args in a fresh process and returns the peak RSS
// it reported.
func childRSS(tb testing.TB, role string, args ...string) int64 {
	tb.Helper()
	c, err := reexec.Start(role, reexec.Options{}, args...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	line, err := c.WaitFor(ctx, "rss ")
	if err != nil {
		c.Kill()
		c.Wait()
		tb.Fatalf("%s child: %v\n%s", role, err, c.Stderr())
	}
	if err := c.Wait(); err != nil {
		tb.Fatalf("%s child: %v\n%s", role, err, c.Stderr())
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(line, "rss "), 10, 64)
	if err != nil {
		tb.Fatalf("%s child reported %q", role, line)
	}
	return n
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

const mib = 1 << 20

// BenchmarkOpenPeakRSS measures the peak RSS of a process that opens a
// file-backed vault with a passphrase slot at kdf.Default (argon2id with 64
// MiB), next to a process that only starts and one that only runs the same
// argon2id derivation. Each iteration starts one child of each kind; the
// medians are reported in MiB:
//
//	open-MiB       peak RSS of the process that opened the vault
//	argon2-MiB     the argon2id memory parameter
//	overhead-MiB   open-MiB - argon2-MiB: the "small constant"
//	idle-MiB       peak RSS of a process that does nothing (the test binary)
//	kdf-MiB        peak RSS of a process that only derives a key
//	x-kdf          open-MiB / kdf-MiB (1: opening costs nothing beyond the KDF)
func BenchmarkOpenPeakRSS(b *testing.B) {
	if _, err := peakRSS(); err != nil {
		b.Skip(err)
	}
	params := kdf.Default
	dir := newVaultDir(b, params, 1)
	var idle, kdfOnly, open []int64
	b.ResetTimer()
	for range b.N {
		idle = append(idle, childRSS(b, "rss-idle"))
		kdfOnly = append(kdfOnly, childRSS(b, "rss-kdf", paramsArgs(params)...))
		open = append(open, childRSS(b, "rss-open", dir))
	}
	b.StopTimer()
	argon := float64(params.MemoryKiB) * 1024
	o, k := float64(medianInt(open)), float64(medianInt(kdfOnly))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(o/mib, "open-MiB")
	b.ReportMetric(argon/mib, "argon2-MiB")
	b.ReportMetric((o-argon)/mib, "overhead-MiB")
	b.ReportMetric(float64(medianInt(idle))/mib, "idle-MiB")
	b.ReportMetric(k/mib, "kdf-MiB")
	b.ReportMetric(o/k, "x-kdf")
}

// rssOpen opens the vault in args[0] with the benchmark passphrase and
// reads one session: what a bot does at start-up.
func rssOpen(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want the vault folder, got %q", args)
	}
	be, err := file.New(args[0])
	if err != nil {
		return err
	}
	defer be.Close()
	v, err := vault.Open(context.Background(), be, vault.WithPassphrase([]byte(benchPassphrase)))
	if err != nil {
		return err
	}
	defer v.Close()
	pt, _, err := v.Store(sessionName(0)).Open(context.Background())
	if err != nil {
		return err
	}
	clear(pt)
	return reportRSS()
}
