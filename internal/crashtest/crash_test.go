package crashtest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
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
	flagKills = flag.Int("crash.kills", 0, "kills per crash test (default: 40, or 500 with SESSIONVAULT_LONG=1)")
	flagSeed  = flag.Uint64("crash.seed", 0, "seed of the kill schedule (default: random, logged)")
)

func TestMain(m *testing.M) {
	roles := map[string]reexec.Func{
		"saver":       saverChild,
		"rotate":      rotateChild,
		"naiverotate": naiveRotateChild,
		"passwd":      passwdChild,
	}
	maps.Copy(roles, powerRoles) // powercut_test.go (nil off Linux)
	reexec.Main(m, roles)
}

// testPassphrase unlocks the test vaults. It is not a marker: the leak
// harness uses its own.
const testPassphrase = "crash-harness-passphrase"

// sessionName is the session the saver grows.
const sessionName = "bot"

// testKDF is the cheapest argon2id the test policy allows: a vault is
// opened after every kill, and the KDF is not what this harness tests.
var testKDF = kdf.Params{Time: 1, MemoryKiB: 8, Threads: 1}

func vaultOptions() []vault.Option {
	return []vault.Option{
		vault.WithPassphrase([]byte(testPassphrase)),
		vault.WithKDFParams(testKDF),
		vault.WithKDFPolicy(kdf.InsecurePolicyForTesting),
	}
}

// newRNG returns the kill schedule's generator and logs its seed.
func newRNG(t *testing.T, f *figures.Set) *rand.Rand {
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("kill schedule seed: -crash.seed=%d", seed)
	f.Note("seed", strconv.FormatUint(seed, 10))
	return rand.New(rand.NewPCG(seed, seed^0x5eed))
}

// openBackend opens the backend kind ("file", or "inplace" for the
// harness's self-test) at dir.
func openBackend(kind, dir string) (backends.Backend, error) {
	switch kind {
	case "file":
		return file.New(dir)
	case "inplace":
		return newInPlace(dir)
	}
	return nil, fmt.Errorf("unknown backend %q", kind)
}

// The saver's session after save s: odd saves replace the tokens (the
// access token's length varies, so the file grows and shrinks), even saves
// set one of cookieSlots cookies to a value naming the save, so the session
// grows until every slot is used. The state after any save S is fully
// determined by S, which is how the parent checks it.
const cookieSlots = 100

func accessToken(s int) string {
	return fmt.Sprintf("acc-%d-%s", s, strings.Repeat("x", s*7919%1500))
}

func refreshToken(s int) string { return fmt.Sprintf("ref-%d", s) }

func cookieName(s int) string { return fmt.Sprintf("c%d", (s/2)%cookieSlots) }

func cookieValue(s int) string { return fmt.Sprintf("v%d", s) }

// expectedCookies is the cookie set after save seq.
func expectedCookies(seq int) map[string]string {
	m := map[string]string{}
	for s := 2; s <= seq; s += 2 {
		m[cookieName(s)] = cookieValue(s)
	}
	return m
}

func save(ctx context.Context, m *session.Manager, s int) error {
	if s%2 == 1 {
		exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		return m.UpdateTokens(ctx, session.NewAuthTokens([]byte(accessToken(s)), []byte(refreshToken(s)), &exp))
	}
	c := session.AuthCookies{Additional: map[string]session.Secret{
		cookieName(s): session.NewSecret([]byte(cookieValue(s))),
	}}
	return m.UpdateCookies(ctx, c)
}

// saverChild opens the vault and saves forever, reporting "ack S" after
// save S returned. args: backend kind, folder, sequence number stored.
func saverChild(args []string) error {
	ctx := context.Background()
	kind, dir := args[0], args[1]
	s, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	b, err := openBackend(kind, dir)
	if err != nil {
		return err
	}
	v, err := vault.Open(ctx, b, vaultOptions()...)
	if err != nil {
		return err
	}
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true))
	if err != nil {
		return err
	}
	reexec.Report("ready %d", s)
	for {
		s++
		if err := save(ctx, m, s); err != nil {
			reexec.Report("error save %d: %v", s, err)
			return err
		}
		reexec.Report("ack %d", s)
	}
}

// plainSession is the part of the stored JSON the harness checks.
type plainSession struct {
	Tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	} `json:"tokens"`
	Cookies struct {
		Additional map[string]string `json:"additional_cookies"`
	} `json:"cookies"`
}

// storedSeq opens the vault and the session from scratch, as a restarted
// process would, and returns the save number the stored session holds. It
// fails if the vault or the session does not open, or if the session is
// not exactly the state after some save S.
func storedSeq(ctx context.Context, kind, dir string) (seq int, openErr, contentErr error) {
	b, err := openBackend(kind, dir)
	if err != nil {
		return 0, err, nil
	}
	defer b.Close()
	v, err := vault.Open(ctx, b, vaultOptions()...)
	if err != nil {
		return 0, err, nil
	}
	defer v.Close()
	plain, _, err := v.Store(sessionName).Open(ctx)
	if err != nil {
		return 0, err, nil
	}
	var ps plainSession
	if err := json.Unmarshal(plain, &ps); err != nil {
		return 0, fmt.Errorf("stored session is not JSON: %w", err), nil
	}
	return checkContent(ps)
}

// checkContent finds S from the tokens and cookies and checks that the
// session is exactly the state after save S.
func checkContent(ps plainSession) (int, error, error) {
	var tokSeq int
	if _, err := fmt.Sscanf(ps.Tokens.AccessToken, "acc-%d-", &tokSeq); err != nil {
		return 0, nil, fmt.Errorf("access token %.20q...: %v", ps.Tokens.AccessToken, err)
	}
	seq := tokSeq
	for name, value := range ps.Cookies.Additional {
		n, err := strconv.Atoi(strings.TrimPrefix(value, "v"))
		if err != nil || n <= 0 || n%2 != 0 || name != cookieName(n) {
			return 0, nil, fmt.Errorf("unexpected cookie %q=%q", name, value)
		}
		seq = max(seq, n)
	}
	if ps.Tokens.AccessToken != accessToken(tokSeq) || ps.Tokens.RefreshToken != refreshToken(tokSeq) {
		return seq, nil, fmt.Errorf("save %d: tokens torn (access %d bytes)", seq, len(ps.Tokens.AccessToken))
	}
	if wantTok := seq - (1 - seq%2); tokSeq != wantTok && !(seq < 2 && tokSeq == 0) {
		return seq, nil, fmt.Errorf("save %d: tokens of save %d", seq, tokSeq)
	}
	want := expectedCookies(seq)
	if len(ps.Cookies.Additional) != len(want) {
		return seq, nil, fmt.Errorf("save %d: %d cookies, want %d", seq, len(ps.Cookies.Additional), len(want))
	}
	for name, value := range want {
		if ps.Cookies.Additional[name] != value {
			return seq, nil, fmt.Errorf("save %d: cookie %s = %q, want %q", seq, name, ps.Cookies.Additional[name], value)
		}
	}
	return seq, nil, nil
}

// createVault makes the vault with the session at save 0 (tokens of save 0,
// no cookies).
func createVault(t *testing.T, kind, dir string) {
	t.Helper()
	ctx := context.Background()
	b, err := openBackend(kind, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := vault.Create(ctx, b, vaultOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CreateSession(ctx, session.NewAuthTokens([]byte(accessToken(0)), []byte(refreshToken(0)), nil), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// runSaves is the saves harness: kills children that save, checks after
// every kill. It returns the figures; it reports failures only through
// them (and t.Log), so that the self-test can run it on a broken writer.
func runSaves(t *testing.T, kind string, kills int, name string) *figures.Set {
	f := figures.New(name)
	f.Declare("kills", "kills_during_open", "acked_saves", "unreadable", "lost_acked", "torn", "ahead", "child_errors")
	rng := newRNG(t, f)
	dir := filepath.Join(t.TempDir(), "vault")
	createVault(t, kind, dir)
	ctx := context.Background()
	stored := 0
	// startup estimates how long a child takes from exec to "ready"
	// (exec, vault open with one KDF run, session load); it is measured
	// on every run that waits for "ready".
	startup := 20 * time.Millisecond
	for k := 0; k < kills; k++ {
		began := time.Now()
		child, err := reexec.Start("saver", reexec.Options{}, kind, dir, strconv.Itoa(stored))
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(5) == 0 {
			// A random moment of the child's start, when it may be
			// opening the vault or loading the session.
			time.Sleep(time.Duration(rng.Int64N(int64(startup))))
		} else {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := child.WaitFor(wctx, "ready")
			cancel()
			if err != nil {
				child.Kill()
				child.Wait()
				t.Fatalf("kill %d: child did not start: %v", k, err)
			}
			startup = time.Since(began)
			// A random moment among the next few saves.
			time.Sleep(time.Duration(rng.IntN(25_000)) * time.Microsecond)
		}
		child.Kill()
		werr := child.Wait()
		if !reexec.Killed(werr) {
			f.Inc("child_errors")
			t.Logf("kill %d: child exited by itself: %v\n%s", k, werr, child.Stderr())
		}
		f.Inc("kills")
		ready := false
		acked := stored
		for _, l := range child.Lines() {
			if strings.HasPrefix(l, "ready") {
				ready = true
			}
			if s, ok := strings.CutPrefix(l, "ack "); ok {
				n, _ := strconv.Atoi(s)
				acked = max(acked, n)
				f.Inc("acked_saves")
			}
		}
		if !ready {
			f.Inc("kills_during_open")
		}
		seq, openErr, contentErr := storedSeq(ctx, kind, dir)
		switch {
		case openErr != nil:
			f.Inc("unreadable")
			t.Logf("kill %d: vault or session does not open: %v", k, openErr)
			return f // nothing to continue from
		case contentErr != nil:
			f.Inc("torn")
			t.Logf("kill %d: %v", k, contentErr)
			return f
		case seq < acked:
			f.Add("lost_acked", int64(acked-seq))
			t.Logf("kill %d: stored save %d, but save %d was acknowledged", k, seq, acked)
		case seq > acked+1:
			f.Inc("ahead")
			t.Logf("kill %d: stored save %d, but only %d were attempted", k, seq, acked+1)
		}
		stored = seq
		if err := checkFolder(kind, dir); err != nil {
			f.Inc("folder_errors")
			t.Logf("kill %d: %v", k, err)
		}
	}
	return f
}

// checkFolder checks what a kill may leave in the folder: the session is
// listed under its name only, never under a temp name.
func checkFolder(kind, dir string) error {
	b, err := openBackend(kind, dir)
	if err != nil {
		return err
	}
	defer b.Close()
	names, err := b.List(context.Background())
	if err != nil {
		return err
	}
	if len(names) != 1 || names[0] != sessionName {
		return fmt.Errorf("List = %q, want [%q]", names, sessionName)
	}
	return nil
}

// TestCrashSaves is the saves harness on the real file backend.
func TestCrashSaves(t *testing.T) {
	kills := figures.Scale(*flagKills, 40, 500)
	if testing.Short() && *flagKills == 0 {
		kills = 15
	}
	f := runSaves(t, "file", kills, "crash/saves")
	f.Report(t)
	for _, k := range []string{"unreadable", "lost_acked", "torn", "ahead", "child_errors", "folder_errors"} {
		if f.Get(k) != 0 {
			t.Errorf("%s = %d, want 0", k, f.Get(k))
		}
	}
	if got := f.Get("kills"); got != int64(kills) {
		t.Errorf("kills = %d, want %d", got, kills)
	}
	if f.Get("acked_saves") == 0 {
		t.Error("no save was acknowledged: the harness tested nothing")
	}
}

// TestCrashHarnessCatchesNonAtomicWriter runs the same harness on a backend
// that overwrites files in place, as axiomtrade-rs does (truncate, write,
// with an fsync in the middle standing in for a slow disk). The harness
// must see the damage; if it did not, its zeros on the real backend would
// prove nothing.
func TestCrashHarnessCatchesNonAtomicWriter(t *testing.T) {
	f := runSaves(t, "inplace", 60, "crash/selftest-inplace")
	f.Report(t)
	if f.Get("unreadable")+f.Get("torn")+f.Get("lost_acked") == 0 {
		t.Fatalf("the harness did not detect a non-atomic writer in %d kills", f.Get("kills"))
	}
}
