package contention

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/kdf"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

var (
	flagN = flag.Int("contention.n", 0, "writer processes (default 4, or 8 with SESSIONVAULT_LONG=1)")
	flagK = flag.Int("contention.k", 0, "updates per writer (default 25, or 200 with SESSIONVAULT_LONG=1)")
)

func TestMain(m *testing.M) {
	reexec.Main(m, map[string]reexec.Func{
		"writer": writerChild,
		"reader": readerChild,
	})
}

const (
	sessionName = "shared"
	passphrase  = "contention-harness-passphrase"
)

func openVault(ctx context.Context, dir string) (*vault.Vault, error) {
	b, err := file.New(dir)
	if err != nil {
		return nil, err
	}
	v, err := vault.Open(ctx, b, vault.WithPassphrase([]byte(passphrase)), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		b.Close()
	}
	return v, err
}

func cookieName(writer, k int) string { return fmt.Sprintf("w%d-%d", writer, k) }

// waitFile polls for path: the start barrier and the reader's stop
// signal, shared by every process through the filesystem.
func waitFile(path string, deadline time.Duration) error {
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(200 * time.Microsecond)
	}
	return fmt.Errorf("%s did not appear within %v", path, deadline)
}

// writerChild: args mode, dir, start file, writer number, K. It adds K
// cookies named w<writer>-<k>, each in its own durable update. Mode
// "manager" uses session.Manager.UpdateCookies (the code under test);
// mode "blind" is the harness's self-test: a read-modify-write without
// lock or version check, which must lose updates.
func writerChild(args []string) error {
	ctx := context.Background()
	mode, dir, start := args[0], args[1], args[2]
	w, _ := strconv.Atoi(args[3])
	k, _ := strconv.Atoi(args[4])
	v, err := openVault(ctx, dir)
	if err != nil {
		return err
	}
	defer v.Close()
	update := blindUpdate(ctx, v.Store(sessionName))
	var m *session.Manager
	if mode == "manager" {
		if m, err = session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true)); err != nil {
			return err
		}
		update = func(name string) error {
			c := session.AuthCookies{Additional: map[string]session.Secret{name: session.NewSecret([]byte("v"))}}
			return m.UpdateCookies(ctx, c)
		}
	}
	reexec.Report("ready")
	if err := waitFile(start, time.Minute); err != nil {
		return err
	}
	for i := range k {
		if err := update(cookieName(w, i)); err != nil {
			// Keep going: the parent counts failed updates apart from
			// lost ones (acknowledged, then missing).
			reexec.Report("fail %d: %.300s", i, oneLine(err.Error()))
			continue
		}
		reexec.Report("ack %d", i)
	}
	if m != nil {
		if err := m.Close(ctx); err != nil {
			return err
		}
	}
	reexec.Report("done")
	return nil
}

// blindUpdate adds a cookie by reading the session, editing its JSON and
// writing it back unconditionally: the lost-update bug the harness must
// catch.
func blindUpdate(ctx context.Context, st session.Store) func(name string) error {
	return func(name string) error {
		plain, _, err := st.Open(ctx)
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(plain, &doc); err != nil {
			return err
		}
		cookies, _ := doc["cookies"].(map[string]any)
		if cookies == nil {
			cookies = map[string]any{}
			doc["cookies"] = cookies
		}
		add, _ := cookies["additional_cookies"].(map[string]any)
		if add == nil {
			add = map[string]any{}
			cookies["additional_cookies"] = add
		}
		add[name] = "v"
		out, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = st.Seal(ctx, out, backends.Any)
		return err
	}
}

// readerChild: args dir, start file, stop file. It opens the stored
// session in a loop until the stop file appears, reporting every failure,
// then the number of reads.
func readerChild(args []string) error {
	ctx := context.Background()
	dir, start, stop := args[0], args[1], args[2]
	v, err := openVault(ctx, dir)
	if err != nil {
		return err
	}
	defer v.Close()
	reexec.Report("ready")
	if err := waitFile(start, time.Minute); err != nil {
		return err
	}
	st := v.Store(sessionName)
	reads, maxSeen := 0, 0
	for {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		plain, _, err := st.Open(ctx)
		reads++
		if err != nil {
			reexec.Report("bad open: %.300s", oneLine(err.Error()))
			continue
		}
		var ps struct {
			Cookies struct {
				Additional map[string]string `json:"additional_cookies"`
			} `json:"cookies"`
		}
		if err := json.Unmarshal(plain, &ps); err != nil {
			reexec.Report("bad json: %.300s", oneLine(err.Error()))
			continue
		}
		// A reader never sees the session go backwards.
		if n := len(ps.Cookies.Additional); n < maxSeen {
			reexec.Report("regress %d cookies after %d", n, maxSeen)
		}
		maxSeen = len(ps.Cookies.Additional)
	}
	reexec.Report("reads %d max %d", reads, maxSeen)
	return nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// TestContention is the harness, on session.Manager.
func TestContention(t *testing.T) {
	n := figures.Scale(*flagN, 4, 8)
	k := figures.Scale(*flagK, 25, 200)
	if testing.Short() && *flagN == 0 && *flagK == 0 {
		n, k = 3, 10
	}
	f := runContention(t, "manager", n, k)
	f.Report(t)
	if lost := f.Get("lost_updates"); lost > 0 {
		t.Errorf("%d acknowledged updates lost", lost)
	}
	if got := f.Get("acked"); got != int64(n*k) {
		t.Errorf("%d updates acknowledged, want %d", got, n*k)
	}
	if f.Get("writer_errors") > 0 {
		t.Errorf("%d writers failed", f.Get("writer_errors"))
	}
	if f.Get("failed_updates") > 0 {
		t.Errorf("%d updates returned an error (a conflict must be retried, not reported)", f.Get("failed_updates"))
	}
	if f.Get("present") != int64(n*k) {
		t.Errorf("%d of %d cookies present", f.Get("present"), n*k)
	}
	if f.Get("regressions") > 0 {
		t.Errorf("the reader saw the session go back %d times", f.Get("regressions"))
	}
	if f.Get("torn_reads") > 0 {
		t.Errorf("the reader saw %d torn or undecryptable states", f.Get("torn_reads"))
	}
	if f.Get("reads") == 0 {
		t.Error("the reader read nothing: it tested nothing")
	}
}

// TestContentionHarnessCatchesLostUpdates runs the harness on writers
// that overwrite blindly: it must count lost updates, or its zero on the
// Manager would prove nothing.
func TestContentionHarnessCatchesLostUpdates(t *testing.T) {
	f := runContention(t, "blind", 4, 25)
	f.Report(t)
	if f.Get("lost_updates") == 0 {
		t.Fatal("blind read-modify-write writers lost no update: the harness cannot see lost updates")
	}
}

// runContention runs n writers of k updates each in mode, and a reader.
func runContention(t *testing.T, mode string, n, k int) *figures.Set {
	ctx := context.Background()
	f := figures.New("contention/" + mode)
	f.Declare("writers", "updates_each", "acked", "failed_updates", "present", "lost_updates", "reads", "torn_reads", "regressions", "writer_errors")
	f.Add("writers", int64(n))
	f.Add("updates_each", int64(k))

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "vault")
	start, stop := filepath.Join(tmp, "start"), filepath.Join(tmp, "stop")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Create(ctx, b, vault.WithPassphrase([]byte(passphrase)),
		vault.WithKDFParams(kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}), vault.WithKDFPolicy(kdf.InsecurePolicyForTesting))
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CreateSession(ctx, session.NewAuthTokens([]byte("a"), []byte("r"), nil), nil, nil); err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	v.Close()

	reader, err := reexec.Start("reader", reexec.Options{}, dir, start, stop)
	if err != nil {
		t.Fatal(err)
	}
	writers := make([]*reexec.Child, n)
	for w := range writers {
		if writers[w], err = reexec.Start("writer", reexec.Options{}, mode, dir, start, strconv.Itoa(w), strconv.Itoa(k)); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, c := range append([]*reexec.Child{reader}, writers...) {
		if _, err := c.WaitFor(wctx, "ready"); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	if err := os.WriteFile(start, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	for w, c := range writers {
		if err := c.Wait(); err != nil {
			f.Inc("writer_errors")
			t.Logf("writer %d: %v\n%s", w, err, c.Stderr())
		}
		for _, l := range c.Lines() {
			var i int
			switch {
			case strings.HasPrefix(l, "ack "):
				fmt.Sscanf(l, "ack %d", &i)
				acked[cookieName(w, i)] = true
				f.Inc("acked")
			case strings.HasPrefix(l, "fail "):
				f.Inc("failed_updates")
				if f.Get("failed_updates") <= 3 {
					t.Logf("writer %d: %s", w, l)
				}
			}
		}
	}
	elapsed := time.Since(began)
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reader.Wait(); err != nil {
		t.Errorf("reader: %v\n%s", err, reader.Stderr())
	}
	for _, l := range reader.Lines() {
		switch {
		case strings.HasPrefix(l, "bad "):
			f.Inc("torn_reads")
			if f.Get("torn_reads") <= 3 {
				t.Logf("reader: %s", l)
			}
		case strings.HasPrefix(l, "regress "):
			f.Inc("regressions")
		case strings.HasPrefix(l, "reads "):
			var r, mx int
			fmt.Sscanf(l, "reads %d max %d", &r, &mx)
			f.Add("reads", int64(r))
		}
	}

	// Count what is stored, from a fresh process's point of view.
	v2, err := openVault(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	plain, _, err := v2.Store(sessionName).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ps struct {
		Cookies struct {
			Additional map[string]string `json:"additional_cookies"`
		} `json:"cookies"`
	}
	if err := json.Unmarshal(plain, &ps); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for w := range n {
		for i := range k {
			_, ok := ps.Cookies.Additional[cookieName(w, i)]
			if ok {
				f.Inc("present")
			}
			if !ok && acked[cookieName(w, i)] {
				missing = append(missing, cookieName(w, i))
			}
		}
	}
	f.Add("lost_updates", int64(len(missing)))
	f.Note("elapsed", elapsed.Round(time.Millisecond).String())
	if len(missing) > 0 {
		t.Logf("%d acknowledged updates lost, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}
	return f
}
