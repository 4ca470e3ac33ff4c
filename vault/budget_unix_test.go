//go:build unix

package vault

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// budgetChild runs TestKDFBudgetChild in a second process on the vault in
// dir ("": do nothing) and returns its peak RSS, wall time and output.
func budgetChild(t *testing.T, dir string) childRun {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status: peak RSS is measured on Linux")
	}
	arg := dir
	if arg == "" {
		arg = "-"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKDFBudgetChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envBudgetChild+"="+arg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var r childRun
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM "); ok {
			if r.rssKiB, err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatalf("child: %q", line)
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "elapsed "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("child: %q", line)
			}
			r.open = time.Duration(us) * time.Microsecond
			continue
		}
		r.out += line
	}
	if r.rssKiB <= 0 {
		t.Fatalf("child reported no peak RSS: %s", out)
	}
	return r
}

// peakRSSKiB returns this process's VmHWM from /proc/self/status, in KiB
// (-1 if it cannot be read).
func peakRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
