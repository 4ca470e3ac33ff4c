//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/internal/figures"
)

// retainingWriter keeps the very slices it is given (not copies), so that
// a test can look at them after the writer's caller has returned: what an
// unwiped buffer would still hold.
type retainingWriter struct {
	kept [][]byte
	seen bytes.Buffer // a copy, for the test to check what was written
}

func (w *retainingWriter) Write(p []byte) (int, error) {
	w.kept = append(w.kept, p)
	w.seen.Write(p)
	return len(p), nil
}

// TestExportWipesWhatItPrints runs "vaultctl export" in this process and
// checks that every buffer it handed to standard output is zero once it
// returns (the plaintext it opened, and the copy with the added newline).
func TestExportWipesWhatItPrints(t *testing.T) {
	dir, pass := makeVault(t, 1)
	w := &retainingWriter{}
	var stderr strings.Builder
	a := &app{stdin: strings.NewReader(""), stdout: w, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := a.run(context.Background(), []string{"--dir", dir, "--passphrase-file", pass, "export", "s0000"}); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(w.seen.String(), "crash-access-0000") || !strings.HasSuffix(w.seen.String(), "\n") {
		t.Fatalf("export printed %d bytes without the token or the final newline", w.seen.Len())
	}
	clear(w.seen.Bytes())
	if len(w.kept) == 0 {
		t.Fatal("nothing written")
	}
	fig := figures.New("vaultctl/export-wipe")
	fig.Declare("writes", "bytes_written", "bytes_left")
	for i, p := range w.kept {
		n := len(p) - bytes.Count(p, []byte{0})
		fig.Inc("writes")
		fig.Add("bytes_written", int64(len(p)))
		fig.Add("bytes_left", int64(n))
		if n != 0 {
			t.Errorf("write %d: %d of %d bytes not wiped after export returned", i, n, len(p))
		}
	}
	fig.Report(t)
	// The same for a plaintext that already ends with a newline (no copy).
	w2 := &retainingWriter{}
	if err := writeExport(w2, []byte("{\"x\":1}\n")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w2.kept[0], make([]byte, 8)) {
		t.Errorf("a plaintext ending in a newline was not wiped: %q", w2.kept[0])
	}
}

const sourceDoc = `{"access_token":"source-access-token","refresh_token":"source-refresh-token","expires_at":"2099-01-01T00:00:00Z"}`

// importChild starts "vaultctl import --remove-source NAME SRC" as a real
// second process whose passphrase comes through a pipe, so that the test
// can act after the child has opened (and read) the source and before it
// unlocks the vault. It returns the child, the pipe's write end, and the
// child's combined output.
func importChild(t *testing.T, dir, name, src string) (*exec.Cmd, *os.File, *bytes.Buffer) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--dir", dir, "--passphrase-fd", "3", "import", "--remove-source", name, src)
	cmd.Env = baseEnv(t)
	cmd.ExtraFiles = []*os.File{pr}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() { pw.Close(); cmd.Process.Kill(); cmd.Wait() })
	return cmd, pw, out
}

// waitOpen waits until process pid holds a descriptor on path (it has
// opened the import source and reads or has read it).
func waitOpen(t *testing.T, pid int, path string) {
	t.Helper()
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir(fdDir)
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && l == path {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("process %d never opened %s", pid, path)
}

// TestImportRemoveSourceSwap: "import --remove-source" zeroes the file it
// read, through the descriptor it read it with, and never a file swapped
// in at the path since: a regular file renamed over it, or a symlink put
// in its place. In each case the swapped-in file (and a symlink's target)
// keeps every byte, the file read is zeroed (seen through a descriptor the
// test opened before), the session is sealed, and the exit code says
// something needs a look. Real second processes, real renames.
func TestImportRemoveSourceSwap(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to see when the child has opened the source")
	}
	dir, pass := makeVault(t, 0)
	passphrase, err := os.ReadFile(pass)
	if err != nil {
		t.Fatal(err)
	}
	fig := figures.New("vaultctl/import-remove-source")
	fig.Declare("swaps", "read_file_zeroed", "sealed", "swapped_in_intact", "exit_error_naming_path")
	defer fig.Report(t)
	for _, swap := range []string{"none", "rename", "symlink"} {
		t.Run(swap, func(t *testing.T) {
			fig.Inc("swaps")
			base := t.TempDir()
			src := filepath.Join(base, "session.json")
			other := filepath.Join(base, "other.json")
			const otherDoc = "another file, not to be touched\n"
			if err := os.WriteFile(src, []byte(sourceDoc), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(other, []byte(otherDoc), 0o600); err != nil {
				t.Fatal(err)
			}
			// The test's own view of the file the child will read.
			orig, err := os.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()

			cmd, pw, out := importChild(t, dir, "imp-"+swap, src)
			waitOpen(t, cmd.Process.Pid, src)
			switch swap {
			case "rename":
				if err := os.Rename(other, src); err != nil {
					t.Fatal(err)
				}
			case "symlink":
				if err := os.Remove(src); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(other, src); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := pw.Write(passphrase); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			err = cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			t.Logf("swap %s: exit %d: %s", swap, code, strings.TrimSpace(out.String()))

			// The file read: zeroed, whatever happened to the path.
			got, rerr := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(orig.Fd())))
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(got) != len(sourceDoc) || bytes.Count(got, []byte{0}) != len(got) {
				t.Errorf("the file read was not zeroed: %d bytes, %d zero", len(got), bytes.Count(got, []byte{0}))
			} else {
				fig.Inc("read_file_zeroed")
			}
			// The session is sealed and opens.
			if c, stdout, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "export", "imp-"+swap); c != 0 || !strings.Contains(stdout, "source-access-token") {
				t.Errorf("the imported session does not export: %d %s", c, stderr)
			} else {
				fig.Inc("sealed")
			}
			switch swap {
			case "none":
				if err != nil {
					t.Errorf("exit %d", code)
				}
				if _, err := os.Lstat(src); !os.IsNotExist(err) {
					t.Errorf("the source is still there: %v", err)
				}
			default:
				if code != exitError || !strings.Contains(out.String(), "left "+src+" alone") {
					t.Errorf("exit %d, want %d with a message that the path was left alone", code, exitError)
				} else {
					fig.Inc("exit_error_naming_path")
					fig.Max("exit_code", int64(code))
				}
				b, err := os.ReadFile(src) // follows the symlink to other
				if err != nil || string(b) != otherDoc {
					t.Errorf("the swapped-in file changed: %q, %v", b, err)
				} else {
					fig.Inc("swapped_in_intact")
				}
				if swap == "symlink" {
					if fi, err := os.Lstat(src); err != nil || fi.Mode()&os.ModeSymlink == 0 {
						t.Errorf("the symlink was removed: %v", err)
					}
				}
			}
		})
	}
}

// TestImportRemoveSourceRefusesSymlink: a source path that is a symlink
// is refused before anything is read (exit 2); its target is untouched.
func TestImportRemoveSourceRefusesSymlink(t *testing.T) {
	dir, pass := makeVault(t, 0)
	base := t.TempDir()
	target := filepath.Join(base, "real.json")
	if err := os.WriteFile(target, []byte(sourceDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "import", "--remove-source", "x", link)
	fig := figures.New("vaultctl/import-remove-source-symlink")
	fig.Add("exit_code", int64(code))
	fig.Report(t)
	if code != exitUsage || !strings.Contains(stderr, "symbolic link") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != sourceDoc {
		t.Fatalf("target changed: %v", err)
	}
	if code, _, _ := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "show", "x"); code != exitNotFound {
		t.Fatalf("a session was stored from a refused source: show exit %d", code)
	}
}
