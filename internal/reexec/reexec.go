// Package reexec runs the current test binary again as a child process in a
// named role, the way the os/exec tests do, so that harnesses can use real
// second processes: writers that race on one vault, a saver that is killed
// with SIGKILL in the middle of a write.
//
// A test package dispatches roles from its TestMain:
//
//	func TestMain(m *testing.M) {
//		reexec.Main(m, map[string]reexec.Func{"saver": saver})
//	}
//
// A child reports to its parent with Report, one line at a time on its
// standard output. Each line is written with a single write(2) of at most
// MaxLine bytes, so a line is either delivered whole or not at all, even
// when the child is killed: a parent that has read "ack 17" knows that the
// child had finished save 17 before it died.
package reexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// EnvRole is the environment variable that selects a child's role.
const EnvRole = "SESSIONVAULT_REEXEC_ROLE"

// envArgs carries the role's arguments, JSON-encoded.
const envArgs = "SESSIONVAULT_REEXEC_ARGS"

// MaxLine is the longest report line. POSIX makes pipe writes of up to
// PIPE_BUF (at least 512) bytes atomic; a line must fit in one.
const MaxLine = 512

// maxStderr bounds how much of a child's standard error is kept for
// diagnostics, so that a child stuck in a loop of warnings cannot exhaust
// the parent's memory.
const maxStderr = 64 << 10

// Func is the body of a child role. It receives the arguments given to
// Start. Returning an error makes the child print it on standard error and
// exit with status 1; returning nil exits with status 0.
type Func func(args []string) error

// Main runs the role named by EnvRole and exits, or, in the parent, runs
// the tests. Call it from TestMain.
func Main(m *testing.M, roles map[string]Func) {
	role, ok := os.LookupEnv(EnvRole)
	if !ok {
		os.Exit(m.Run())
	}
	os.Exit(runRole(role, roles))
}

func runRole(role string, roles map[string]Func) int {
	f := roles[role]
	if f == nil {
		fmt.Fprintf(os.Stderr, "reexec: unknown role %q\n", role)
		return 2
	}
	var args []string
	if s := os.Getenv(envArgs); s != "" {
		if err := json.Unmarshal([]byte(s), &args); err != nil {
			fmt.Fprintf(os.Stderr, "reexec: bad %s: %v\n", envArgs, err)
			return 2
		}
	}
	if err := f(args); err != nil {
		fmt.Fprintf(os.Stderr, "reexec: role %s: %v\n", role, err)
		return 1
	}
	return 0
}

// IsChild reports whether this process runs as a child role.
func IsChild() bool {
	_, ok := os.LookupEnv(EnvRole)
	return ok
}

var reportMu sync.Mutex

// Report sends one line to the parent. The line must not contain a
// newline and must be at most MaxLine bytes with it; Report panics
// otherwise (a programmer error in the harness). It returns the write
// error, if any.
func Report(format string, a ...any) error {
	line := fmt.Sprintf(format, a...) + "\n"
	if strings.Count(line, "\n") != 1 || len(line) > MaxLine {
		panic(fmt.Sprintf("reexec: bad report line (%d bytes)", len(line)))
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	_, err := os.Stdout.WriteString(line)
	return err
}

// Options adjust a child's environment.
type Options struct {
	// Env is added to the parent's environment.
	Env []string
	// Dir is the child's working folder ("" = the parent's).
	Dir string
	// Wrapper, when set, is a command line that runs the child: the child's
	// own command is appended to it (for example {"strace", "-f", "-o",
	// FILE}). Kill then kills the wrapper.
	Wrapper []string
}

// Child is a running child process.
type Child struct {
	cmd    *exec.Cmd
	stderr *boundedBuffer

	mu     sync.Mutex
	lines  []string
	next   int
	eof    bool
	notify chan struct{}

	readDone chan struct{}
	waitOnce sync.Once
	waitErr  error
}

// Start runs the test binary again in role with args.
func Start(role string, opts Options, args ...string) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("reexec: %w", err)
	}
	encoded, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("reexec: %w", err)
	}
	// -test.run=^$ makes a binary whose TestMain forgot to call Main run no
	// test and exit, instead of recursing into the suite.
	argv := append(append([]string(nil), opts.Wrapper...), exe, "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), EnvRole+"="+role, envArgs+"="+string(encoded))
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Dir = opts.Dir
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reexec: %w", err)
	}
	c := &Child{
		cmd:      cmd,
		stderr:   &boundedBuffer{max: maxStderr},
		notify:   make(chan struct{}, 1),
		readDone: make(chan struct{}),
	}
	cmd.Stdout = pw
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("reexec: start %s: %w", role, err)
	}
	pw.Close() // the child holds the only write end now: EOF when it dies
	go c.read(pr)
	return c, nil
}

func (c *Child) read(r *os.File) {
	defer close(c.readDone)
	defer r.Close()
	var partial []byte
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		partial = append(partial, buf[:n]...)
		var complete []string
		for {
			i := bytes.IndexByte(partial, '\n')
			if i < 0 {
				break
			}
			complete = append(complete, string(partial[:i]))
			partial = partial[i+1:]
		}
		c.mu.Lock()
		c.lines = append(c.lines, complete...)
		if err != nil {
			// A partial last line cannot happen with Report (one write per
			// line); keep it visible anyway rather than hide it.
			if len(partial) > 0 {
				c.lines = append(c.lines, "PARTIAL "+string(partial))
			}
			c.eof = true
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Next returns the next report line, blocking until there is one. After
// the child closed its output and every line was returned it returns
// io.EOF; when ctx ends first it returns ctx.Err().
func (c *Child) Next(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		if c.next < len(c.lines) {
			l := c.lines[c.next]
			c.next++
			c.mu.Unlock()
			return l, nil
		}
		eof := c.eof
		c.mu.Unlock()
		if eof {
			return "", io.EOF
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// WaitFor reads lines until one starts with prefix and returns it. Lines
// that start with "error " end the wait with that error.
func (c *Child) WaitFor(ctx context.Context, prefix string) (string, error) {
	for {
		l, err := c.Next(ctx)
		if err != nil {
			return "", fmt.Errorf("reexec: waiting for %q: %w (stderr: %s)", prefix, err, c.Stderr())
		}
		if strings.HasPrefix(l, prefix) {
			return l, nil
		}
		if strings.HasPrefix(l, "error ") {
			return "", fmt.Errorf("reexec: child reported %s (stderr: %s)", l, c.Stderr())
		}
	}
}

// Kill sends SIGKILL (on Windows: TerminateProcess). It does not wait.
func (c *Child) Kill() error { return c.cmd.Process.Kill() }

// Wait waits for the child to exit and for its output to be read whole.
// It returns the exit error; after Kill that is "signal: killed".
func (c *Child) Wait() error {
	c.waitOnce.Do(func() {
		c.waitErr = c.cmd.Wait()
		<-c.readDone
	})
	return c.waitErr
}

// Lines returns every line read so far (all of them after Wait).
func (c *Child) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Stderr returns what the child wrote to standard error (at most the first
// 64 KiB).
func (c *Child) Stderr() string { return c.stderr.String() }

// Killed reports whether err, from Wait, means the child died of a signal
// rather than exiting.
func Killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	return !ee.Exited()
}

type boundedBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.b.Len(); room > 0 {
		if len(p) > room {
			w.b.Write(p[:room])
		} else {
			w.b.Write(p)
		}
	}
	return len(p), nil
}

func (w *boundedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
