package reexec

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Main(m, map[string]Func{
		"count": func(args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return err
			}
			for i := range n {
				if err := Report("line %d", i); err != nil {
					return err
				}
			}
			return nil
		},
		"hang": func(args []string) error {
			Report("ready %s", os.Getenv("REEXEC_TEST_VALUE"))
			for i := 0; ; i++ {
				Report("tick %d", i)
				time.Sleep(time.Millisecond)
			}
		},
		"fail": func(args []string) error {
			return errors.New("deliberate failure")
		},
	})
}

func TestChildReportsEveryLine(t *testing.T) {
	// 20000 lines overflow the pipe buffer many times: the reader must keep
	// draining while the child writes.
	c, err := Start("count", Options{}, "20000")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("wait: %v; stderr: %s", err, c.Stderr())
	}
	lines := c.Lines()
	if len(lines) != 20000 {
		t.Fatalf("got %d lines", len(lines))
	}
	for i, l := range lines {
		if l != "line "+strconv.Itoa(i) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
	ctx := context.Background()
	for range 20000 {
		if _, err := c.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Next(ctx); err != io.EOF {
		t.Fatalf("Next after the last line: %v, want EOF", err)
	}
}

func TestKillDeliversWholeLines(t *testing.T) {
	c, err := Start("hang", Options{Env: []string{"REEXEC_TEST_VALUE=v42"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready, err := c.WaitFor(ctx, "ready")
	if err != nil {
		t.Fatal(err)
	}
	if ready != "ready v42" {
		t.Fatalf("ready line %q: Options.Env not passed", ready)
	}
	if _, err := c.WaitFor(ctx, "tick 5"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	if !Killed(err) {
		t.Fatalf("Wait after Kill: %v, want killed by a signal", err)
	}
	for _, l := range c.Lines() {
		if strings.HasPrefix(l, "PARTIAL") || !(strings.HasPrefix(l, "tick ") || strings.HasPrefix(l, "ready ")) {
			t.Fatalf("torn line %q", l)
		}
	}
}

func TestChildError(t *testing.T) {
	c, err := Start("fail", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	if err == nil || Killed(err) {
		t.Fatalf("Wait: %v, want exit status 1", err)
	}
	if !strings.Contains(c.Stderr(), "deliberate failure") {
		t.Fatalf("stderr %q", c.Stderr())
	}
	c, err = Start("no-such-role", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err == nil || !strings.Contains(c.Stderr(), "unknown role") {
		t.Fatalf("unknown role: %v, stderr %q", err, c.Stderr())
	}
}

func TestReportRejectsBadLines(t *testing.T) {
	for _, line := range []string{"two\nlines", strings.Repeat("x", MaxLine)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Report(%.20q...) did not panic", line)
				}
			}()
			Report("%s", line)
		}()
	}
}
