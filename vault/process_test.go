package vault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

const envWriterChild = "SESSIONVAULT_VAULT_TEST_WRITER"

// writerChild is the second process of TestTwoProcessesRotateWhileWriting:
// it updates sessions (compare-and-set on their versions) and creates new
// ones, then prints the value it last stored under each name.
func writerChild(dir string) error {
	ctx := context.Background()
	b, err := file.New(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := Open(ctx, b, cheap(testPass)...)
	if err != nil {
		return err
	}
	defer v.Close()
	final := map[string]string{}
	for round := range 20 {
		for i := range 5 {
			name := fmt.Sprintf("s%d", i)
			val := fmt.Sprintf("child-%d", round)
			st := v.Store(name)
			for {
				_, ver, err := st.Open(ctx)
				if err != nil {
					return fmt.Errorf("open %s: %w", name, err)
				}
				if _, err := st.Seal(ctx, []byte(val), ver); err != nil {
					if errors.Is(err, backends.ErrConflict) {
						continue
					}
					return fmt.Errorf("seal %s: %w", name, err)
				}
				break
			}
			final[name] = val
		}
		name := fmt.Sprintf("new-%d", round)
		if _, err := v.Store(name).Seal(ctx, []byte("created"), backends.Absent); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		final[name] = "created"
	}
	for name, val := range final {
		fmt.Printf("%s=%s\n", name, val)
	}
	return nil
}

// TestTwoProcessesRotateWhileWriting rotates the key again and again in
// this process while a second process, on the same folder (file backend, real
// flock), keeps updating and creating sessions: no update is lost and
// every session ends under the current generation or one the header holds.
func TestTwoProcessesRotateWhileWriting(t *testing.T) {
	if dir := os.Getenv(envWriterChild); dir != "" {
		if err := writerChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := Create(ctx, b, cheap(testPass)...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range 5 {
		seal(t, v, fmt.Sprintf("s%d", i), "parent")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestTwoProcessesRotateWhileWriting$")
	cmd.Env = append(os.Environ(), envWriterChild+"="+dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Rotate for as long as the child writes (at least 3 times).
	rotations := 0
	var childErr error
	for running := true; running || rotations < 3; {
		if err := v.RotateKey(ctx, nil); err != nil {
			cmd.Process.Kill()
			<-done
			t.Fatal(err)
		}
		rotations++
		// flock is not fair: pause so that the child, waiting for the
		// header lock to create a session, gets it.
		select {
		case childErr = <-done:
			running = false
		case <-time.After(20 * time.Millisecond):
		}
	}
	if childErr != nil {
		t.Fatalf("child: %v\n%s", childErr, stderr.String())
	}
	t.Logf("%d rotations while the child wrote", rotations)
	fresh, err := Open(ctx, b, cheap(testPass)...)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	sc := bufio.NewScanner(&out)
	n := 0
	for sc.Scan() {
		name, want, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		n++
		if got := open(t, fresh, name); got != want {
			t.Errorf("%s = %q, want %q: an update was lost", name, got, want)
		}
	}
	if n != 25 {
		t.Fatalf("child reported %d sessions, want 25\n%s", n, out.String())
	}
	held := map[uint32]bool{}
	for _, g := range fresh.Info().Generations {
		held[g] = true
	}
	names, _ := fresh.Sessions(ctx)
	for _, name := range names {
		if g := sessionGen(t, b, name); !held[g] {
			t.Errorf("%s sealed under generation %d, header holds %v", name, g, fresh.Info().Generations)
		}
	}
}
