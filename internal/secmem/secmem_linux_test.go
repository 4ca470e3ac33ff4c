package secmem

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// smapsEntry returns the Locked size (kB) and VmFlags of the mapping that
// contains addr, read from the kernel's own view in /proc/self/smaps.
func smapsEntry(t *testing.T, addr uintptr) (lockedKB int, flags []string) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, found := false, false
	for sc.Scan() {
		line := sc.Text()
		if start, end, ok := mappingRange(line); ok {
			in = start <= addr && addr < end
			found = found || in
			continue
		}
		if !in {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Locked:"); ok {
			lockedKB, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			flags = strings.Fields(v)
		}
	}
	if !found {
		t.Fatalf("mapping at %#x not in /proc/self/smaps", addr)
	}
	return lockedKB, flags
}

// mappingRange parses the "start-end perms ..." header line of an smaps
// entry.
func mappingRange(line string) (start, end uintptr, ok bool) {
	first, _, _ := strings.Cut(line, " ")
	s, e, ok := strings.Cut(first, "-")
	if !ok {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(s, 16, 64)
	b, err2 := strconv.ParseUint(e, 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}

func TestLinuxLockedAndDontDump(t *testing.T) {
	buf := New(32)
	defer buf.Destroy()
	if buf.mapping == nil {
		t.Fatalf("buffer is on the heap: %v", buf.LockErr())
	}
	addr := uintptr(unsafe.Pointer(&buf.mapping[0]))
	lockedKB, flags := smapsEntry(t, addr)
	has := func(f string) bool {
		for _, x := range flags {
			if x == f {
				return true
			}
		}
		return false
	}
	if !has("dd") {
		t.Errorf("VmFlags %v lack dd (MADV_DONTDUMP)", flags)
	}
	if buf.Locked() {
		if lockedKB == 0 || !has("lo") {
			t.Errorf("Locked() but smaps says Locked: %d kB, VmFlags %v", lockedKB, flags)
		}
		if err := buf.LockErr(); err != nil {
			t.Errorf("Locked() with LockErr %v", err)
		}
	} else {
		t.Logf("mlock refused here: %v", buf.LockErr())
		if buf.LockErr() == nil {
			t.Error("unlocked buffer without LockErr")
		}
	}
}

// TestLinuxMlockRefused runs a child process with RLIMIT_MEMLOCK = 0, where
// mlock fails unless the process has CAP_IPC_LOCK: the buffer must still
// work, be unlocked and say why.
func TestLinuxMlockRefused(t *testing.T) {
	if os.Getenv("SECMEM_TEST_CHILD") == "memlock0" {
		// Capabilities are per thread on Linux: drop CAP_IPC_LOCK (which
		// lets root ignore RLIMIT_MEMLOCK) on this goroutine's thread, the
		// one that will call mlock.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			fmt.Printf("capget: %v\n", err)
			return
		}
		data[0].Effective &^= 1 << unix.CAP_IPC_LOCK
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			fmt.Printf("capset: %v\n", err)
			return
		}
		buf := New(32)
		copy(buf.Bytes(), "key")
		fmt.Printf("locked=%v err=%v\n", buf.Locked(), buf.LockErr())
		buf.Destroy()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestLinuxMlockRefused$")
	cmd.Env = append(os.Environ(), "SECMEM_TEST_CHILD=memlock0")
	// prlimit on the started child would race with its first New; set the
	// limit in this process around the start instead. Limits are
	// inherited at fork.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old); err != nil {
		t.Fatal(err)
	}
	zero := unix.Rlimit{Cur: 0, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &zero); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err2 := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old); err2 != nil {
		t.Fatal(err2)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	switch {
	case strings.Contains(s, "locked=false err=secmem: mlock"):
		// Refused and reported: the expected outcome.
	default:
		t.Fatalf("child output: %s", s)
	}
}
