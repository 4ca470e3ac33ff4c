//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// The test binary re-executes itself as a child process when this
// variable names a role; SESSIONVAULT_FILE_DIR gives the folder.
const (
	childEnv    = "SESSIONVAULT_FILE_CHILD"
	childDirEnv = "SESSIONVAULT_FILE_DIR"
	childNEnv   = "SESSIONVAULT_FILE_N"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		if err := child(role, os.Getenv(childDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(role, dir string) error {
	ctx := context.Background()
	b, err := file.New(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	n, _ := strconv.Atoi(os.Getenv(childNEnv))
	switch role {
	case "increment":
		// n compare-and-set increments of "counter", retrying conflicts.
		for done := 0; done < n; {
			blob, v, err := b.Get(ctx, "counter")
			if err != nil {
				return err
			}
			c, err := strconv.Atoi(string(blob))
			if err != nil {
				return fmt.Errorf("counter holds %q: torn or mixed", blob)
			}
			_, err = b.Put(ctx, "counter", []byte(strconv.Itoa(c+1)), v)
			switch {
			case err == nil:
				done++
			case !errors.Is(err, backends.ErrConflict):
				return err
			}
		}
		return nil
	case "hold-lock":
		if _, err := b.Lock(ctx, "refresh"); err != nil {
			return err
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		return errors.New("not killed")
	case "try-lock":
		// One attempt at "refresh" for n milliseconds: prints
		// "locked" or "busy".
		ctx, cancel := context.WithTimeout(ctx, time.Duration(n)*time.Millisecond)
		defer cancel()
		l, err := b.Lock(ctx, "refresh")
		switch {
		case err == nil:
			fmt.Println("locked")
			return l.Unlock(ctx)
		case errors.Is(err, backends.ErrLocked):
			fmt.Println("busy")
			return nil
		}
		return err
	case "save-loop":
		// Saves generation after generation, continuing from the
		// stored one, printing each acknowledged generation, until
		// killed.
		start := 1
		blob, v, err := b.Get(ctx, "s")
		switch {
		case errors.Is(err, backends.ErrNotFound):
			v = backends.Absent
		case err != nil:
			return err
		default:
			gen, err := strconv.Atoi(strings.Fields(string(blob))[0])
			if err != nil {
				return err
			}
			start = gen + 1
		}
		for i := start; ; i++ {
			blob := []byte(strings.Repeat(strconv.Itoa(i)+" ", 50+i%200))
			if v, err = b.Put(ctx, "s", blob, v); err != nil {
				return err
			}
			fmt.Println(i)
		}
	}
	return fmt.Errorf("unknown role %q", role)
}

func childCmd(t *testing.T, role, dir string, n int) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, childDirEnv+"="+dir, childNEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	return cmd
}

// TestProcessesIncrement runs several processes that each make
// compare-and-set increments of one counter in one folder: no update is
// lost.
func TestProcessesIncrement(t *testing.T) {
	procs, each := 4, 50
	if testing.Short() {
		procs, each = 3, 15
	}
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Put(ctx, "counter", []byte("0"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for range procs {
		cmd := childCmd(t, "increment", dir, each)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	got, _, err := b.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(procs * each); string(got) != want {
		t.Fatalf("counter = %s after %d processes x %d increments, want %s: lost updates", got, procs, each, want)
	}
	noTemps(t, dir)
	t.Logf("%d processes x %d increments: counter %s, 0 lost", procs, each, got)
}

// TestProcessLock: a lock held by another process makes Lock wait (and
// fail with ErrLocked when ctx ends); killing the holder with SIGKILL
// frees it.
func TestProcessLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cmd := childCmd(t, "hold-lock", dir, 0)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = b.Lock(ctx, "refresh")
	cancel()
	if !errors.Is(err, backends.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock held by another process: %v, want ErrLocked and DeadlineExceeded", err)
	}
	// Another name is free.
	l, err := b.Lock(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock(context.Background())

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err = b.Lock(ctx, "refresh")
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	l.Unlock(ctx)
}

// TestKillDuringSaves kills a process that saves in a loop with SIGKILL
// at random moments: after each kill the blob is whole, is the last
// acknowledged generation or a later one, and nothing but the session is
// listed. (Temp files of a killed writer may stay behind as ignored
// dot-files.) The vault-level crash harness goes further; this checks the
// backend alone.
func TestKillDuringSaves(t *testing.T) {
	kills := 20
	if testing.Short() {
		kills = 5
	}
	dir := filepath.Join(t.TempDir(), "vault")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	lastAcked := 0
	for k := range kills {
		cmd := childCmd(t, "save-loop", dir, 0)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan int, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				n, _ := strconv.Atoi(sc.Text())
				acks <- n
			}
			close(acks)
		}()
		// Wait for its first save, let it save a while more, then kill
		// it mid-flight.
		if n, ok := <-acks; ok {
			lastAcked = n
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for n := range acks {
			lastAcked = n
		}
		cmd.Wait()
		blob, _, err := b.Get(ctx, "s")
		if lastAcked == 0 && errors.Is(err, backends.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("kill %d: Get: %v", k, err)
		}
		fields := strings.Fields(string(blob))
		gen, _ := strconv.Atoi(fields[0])
		if want := strings.Repeat(fields[0]+" ", 50+gen%200); string(blob) != want {
			t.Fatalf("kill %d: torn blob of %d bytes", k, len(blob))
		}
		if gen < lastAcked {
			t.Fatalf("kill %d: stored generation %d, but %d was acknowledged", k, gen, lastAcked)
		}
		lastAcked = gen
		if names, err := b.List(ctx); err != nil || len(names) != 1 || names[0] != "s" {
			t.Fatalf("kill %d: List = %q, %v", k, names, err)
		}
	}
	t.Logf("%d kills, last generation %d, 0 torn, 0 lost", kills, lastAcked)
}
