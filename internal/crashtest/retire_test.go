package crashtest

import (
	"context"

	"fmt"
	goredis "github.com/redis/go-redis/v9"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/reexec"
	"github.com/sessionvault/sessionvault/internal/retired"
	"github.com/sessionvault/sessionvault/internal/servicetest"
	"github.com/sessionvault/sessionvault/vault"
)

// The retirement harnesses: a child changes a credential (passwd, slot
// removal) or rotates the data key and is killed with SIGKILL at a random
// moment; after every kill the parent opens the vault (with the old or the
// new credential: never neither), which finishes an interrupted purge,
// and then scans everything the backend holds (every file of the folder,
// or every key and field of the Redis server) for headers and envelopes
// at any offset, and tries the retired credentials and the dropped data
// keys on them: nothing may open.

// harnessPass is the i-th passphrase of the passwd and slots harnesses:
// passA, then a fresh one for every change, so that a credential an
// interrupted change was about to set (it may sit in a temp file, and
// never took effect) is never confused with one a committed change
// retired. Children get the index in argv, never the passphrase.
func harnessPass(i int) string {
	if i == 0 {
		return passA
	}
	return fmt.Sprintf("crash-harness-passphrase-%d", i)
}

// A location is a vault folder, or "redis:PREFIX" for a vault on the
// Redis server of scripts/with-redis under that key prefix.
const redisLoc = "redis:"

var (
	redisMu       sync.Mutex
	redisBackends = map[string]*redis.Backend{} // one per prefix per process
)

// slowSteps makes the file backend of a retirement child wait
// slowStep before every step of every operation (a slow disk), so that
// kills spread over every step, the purge's included, instead of
// landing mostly after a change that takes microseconds.
var slowSteps bool

const slowStep = 300 * time.Microsecond

// openLoc opens the backend at loc. Redis backends are shared within the
// process (the parent opens the vault after every kill).
func openLoc(loc string) (backends.Backend, error) {
	prefix, ok := strings.CutPrefix(loc, redisLoc)
	if !ok {
		if slowSteps {
			return file.New(loc, file.WithStepHook(func(ctx context.Context, _ file.StepInfo) error {
				time.Sleep(slowStep)
				return nil
			}))
		}
		return file.New(loc)
	}
	redisMu.Lock()
	defer redisMu.Unlock()
	if b := redisBackends[prefix]; b != nil {
		return sharedRedis{b}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redis.NewFromURL(ctx, os.Getenv("SESSIONVAULT_REDIS_URL"), redis.WithPrefix(prefix))
	if err != nil {
		return nil, err
	}
	redisBackends[prefix] = b
	return sharedRedis{b}, nil
}

// sharedRedis is a shared Redis backend whose Close is a no-op.
type sharedRedis struct{ *redis.Backend }

func (sharedRedis) Close() error { return nil }

var (
	scanClientOnce sync.Once
	scanClient     *goredis.Client
	scanClientErr  error
)

// redisClient is a plain client of the test server, for the scanner.
func redisClient() (*goredis.Client, error) {
	scanClientOnce.Do(func() {
		opt, err := goredis.ParseURL(os.Getenv("SESSIONVAULT_REDIS_URL"))
		if err != nil {
			scanClientErr = err
			return
		}
		scanClient = goredis.NewClient(opt)
	})
	return scanClient, scanClientErr
}

// scanLoc scans everything the backend at loc holds.
func scanLoc(ctx context.Context, sc *retired.Scanner, loc string) (retired.Report, error) {
	prefix, ok := strings.CutPrefix(loc, redisLoc)
	if !ok {
		return sc.ScanDir(loc)
	}
	c, err := redisClient()
	if err != nil {
		return retired.Report{}, err
	}
	blobKey := "{" + prefix + "}:b:"
	// Every key of the vault: the backend keeps nothing outside its
	// prefix (other harnesses share the server).
	return sc.ScanRedis(ctx, retired.RedisClient{C: c, Match: "{" + prefix + "}:*"}, func(key string) string {
		name, _ := strings.CutPrefix(key, blobKey)
		return name
	})
}

// expireLeases stands for the TTL of the killed child's Redis leases
// running out (the dead holder cannot renew them): it deletes the
// vault's lease keys, so that the next child does not spend the whole
// kill window waiting for the header lock. A no-op for a folder.
func expireLeases(ctx context.Context, t *testing.T, loc string) {
	prefix, ok := strings.CutPrefix(loc, redisLoc)
	if !ok {
		return
	}
	c, err := redisClient()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := (retired.RedisClient{C: c, Match: "{" + prefix + "}:lock:*"}).Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// headerKeys returns the data keys of the current header at loc.
func headerKeys(t *testing.T, loc string) [][]byte {
	t.Helper()
	b, err := openLoc(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	blob, _, err := b.Get(context.Background(), backends.HeaderName)
	if err != nil {
		t.Fatal(err)
	}
	keys := retired.HeaderKeys(blob, []byte(passA))
	if keys == nil {
		t.Fatal("the header does not open with the harness passphrase")
	}
	return keys
}

// passwdNChild changes the passphrase of the vault at args[0] from
// harnessPass(args[1]) to harnessPass(args[2]).
func passwdNChild(args []string) error {
	slowSteps = true
	ctx := context.Background()
	from, _ := strconv.Atoi(args[1])
	to, _ := strconv.Atoi(args[2])
	v, err := openWith(ctx, args[0], harnessPass(from))
	if err != nil {
		return err
	}
	reexec.Report("ready")
	if err := v.ChangePassphrase(ctx, []byte(harnessPass(to)), testKDF); err != nil {
		reexec.Report("error passwd: %v", err)
		return err
	}
	reexec.Report("done")
	return v.Close()
}

// slotsChild adds a passphrase slot for harnessPass(args[1]) to the vault
// at args[0] if it has only the passA slot, and removes the other slot if
// it has one.
func slotsChild(args []string) error {
	slowSteps = true
	ctx := context.Background()
	add, _ := strconv.Atoi(args[1])
	v, err := openWith(ctx, args[0], passA)
	if err != nil {
		return err
	}
	reexec.Report("ready")
	in := v.Info()
	if len(in.Slots) == 1 {
		_, err = v.AddPassphraseSlot(ctx, []byte(harnessPass(add)), testKDF)
	} else {
		for _, s := range in.Slots {
			if s.ID != in.UnlockedBy {
				err = v.RemoveSlot(ctx, s.ID)
			}
		}
	}
	if err != nil {
		reexec.Report("error slots: %v", err)
		return err
	}
	reexec.Report("done")
	return v.Close()
}

// retireRotateChild is rotateChild on a slow disk (slowSteps).
func retireRotateChild(args []string) error {
	slowSteps = true
	return rotateChild(args)
}

// unpurgedPasswdChild changes the passphrase from args[1] to args[2] like
// passwdChild, on a file backend that the vault does not know keeps
// previous generations, so that it never purges: the scanner's self-test.
func unpurgedPasswdChild(args []string) error {
	ctx := context.Background()
	pick := map[string]string{"A": passA, "B": passB}
	b, err := openLoc(args[0])
	if err != nil {
		return err
	}
	opts := append(vaultOptions()[1:], vault.WithPassphrase([]byte(pick[args[1]])))
	v, err := vault.Open(ctx, hideRecoverer{b}, opts...)
	if err != nil {
		return err
	}
	reexec.Report("ready")
	if err := v.ChangePassphrase(ctx, []byte(pick[args[2]]), testKDF); err != nil {
		return err
	}
	reexec.Report("done")
	return v.Close()
}

// hideRecoverer hides backends.Recoverer (and Locker) of the backend it
// wraps.
type hideRecoverer struct{ backends.Backend }

func retireKills() int {
	n := figures.Scale(*flagKills, 8, 300)
	if testing.Short() && *flagKills == 0 {
		n = 4
	}
	return n
}

func retireSessions() int { return figures.Scale(0, 12, 60) }

// runRetire is the retirement harness for role ("passwdn", "slots",
// "retirerotate") on the vault at loc.
func runRetire(t *testing.T, role, loc, backend string, n, kills int) *figures.Set {
	f := figures.New("crash/retire-" + roleName(role) + "-" + backend)
	f.Declare("sessions", "kills", "committed", "pending_seen", "unreadable_vaults", "unreadable_sessions",
		"blobs_scanned", "headers_scanned", "envelopes_scanned", "retired_opened")
	f.Add("sessions", int64(n))
	rng := newRNG(t, f)
	ctx := context.Background()
	createMany(t, loc, n)

	// The state: cur is the passphrase index that opens the vault
	// (passwd), second the index of the second slot or -1 (slots),
	// next the next fresh index, gone the indexes a committed change
	// retired, seen every data key the vault ever held (rotate).
	cur, second, next, target := 0, -1, 1, 0
	var gone []int
	var lastKey string // rotate: the current generation's key
	seen := map[string][]byte{}
	learn := func() {
		if role == "retirerotate" {
			for _, k := range headerKeys(t, loc) {
				seen[string(k)] = k
			}
		}
	}
	args := func() []string {
		switch role {
		case "passwdn":
			target = next
			next++
			return []string{loc, strconv.Itoa(cur), strconv.Itoa(target)}
		case "slots":
			target = next
			next++
			return []string{loc, strconv.Itoa(target)}
		}
		return []string{loc}
	}
	// creds returns what is retired and what is live now.
	creds := func() retired.Credentials {
		var c retired.Credentials
		for _, i := range gone {
			c.Passphrases = append(c.Passphrases, []byte(harnessPass(i)))
		}
		c.LivePassphrases = [][]byte{[]byte(harnessPass(cur))}
		if second >= 0 {
			c.LivePassphrases = append(c.LivePassphrases, []byte(harnessPass(second)))
		}
		if role == "retirerotate" {
			live := map[string]bool{}
			for _, k := range headerKeys(t, loc) {
				live[string(k)] = true
			}
			for s, k := range seen {
				if !live[s] {
					c.DroppedKeys = append(c.DroppedKeys, k)
				}
			}
		}
		return c
	}
	opens := func(i int) bool {
		v, err := openWith(ctx, loc, harnessPass(i))
		if err == nil {
			v.Close()
		}
		return err == nil
	}
	// observe opens the vault as a restarted process would (finishing
	// an interrupted purge), checks every session, and updates the
	// state.
	observe := func(k int) bool {
		passes := []string{harnessPass(cur)}
		if role == "passwdn" {
			passes = append(passes, harnessPass(target))
		}
		pass, bad, err := checkMany(ctx, loc, n, passes...)
		if err != nil {
			f.Inc("unreadable_vaults")
			t.Errorf("kill %d: the vault opens with neither the old nor the new passphrase: %v", k, err)
			return false
		}
		f.Add("unreadable_sessions", int64(bad))
		committed := false
		switch role {
		case "passwdn":
			if pass == harnessPass(target) {
				gone = append(gone, cur)
				cur = target
				committed = true
			}
		case "slots":
			switch {
			case second < 0 && opens(target):
				second = target
				committed = true
			case second >= 0 && !opens(second):
				gone = append(gone, second)
				second = -1
				committed = true
			}
		case "retirerotate":
			keys := headerKeys(t, loc)
			if k := string(keys[len(keys)-1]); k != lastKey {
				committed = lastKey != ""
				lastKey = k
			}
		}
		if committed && k >= 0 {
			f.Inc("committed")
		}
		learn()
		return true
	}
	scan := func(key string) int {
		rep, err := scanLoc(ctx, retired.New(creds()), loc)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			f.Add("blobs_scanned", int64(rep.Blobs))
			f.Add("headers_scanned", int64(rep.Headers))
			f.Add("envelopes_scanned", int64(rep.Envelopes))
			f.Add(key, int64(len(rep.Findings)))
			for i, fd := range rep.Findings {
				if i < 5 {
					t.Errorf("retired credential opens: %s (cur %d, target %d, second %d)", fd, cur, target, second)
				}
			}
			if len(rep.Findings) > 0 && os.Getenv("CRASHTEST_DEBUG") != "" {
				out, _ := exec.Command("ls", "-la", "--time-style=full-iso", loc).CombinedOutput()
				t.Logf("%s", out)
			}
		}
		return len(rep.Findings)
	}

	learn()
	full := runToEnd(t, role, args()...)
	observe(-1)
	scan("retired_opened")
	for k := 0; k < kills; k++ {
		learn()
		d := time.Duration(rng.Int64N(int64(full) * 12 / 10))
		killAt(t, d, role, args()...)
		f.Inc("kills")
		expireLeases(ctx, t, loc)
		// Before the reopen a purge may be pending: the retired
		// credential may still open the kept previous header. Counted
		// (it shows kills land in that window), not an error: the next
		// open finishes the purge.
		if scan("") > 0 {
			f.Inc("pending_seen")
		}
		if !observe(k) {
			break
		}
		scan("retired_opened")
	}
	return f
}

// roleName is the name of a harness role in figures and subtests.
func roleName(role string) string {
	return map[string]string{"passwdn": "passwd", "slots": "slots", "retirerotate": "rotate"}[role]
}

func checkRetire(t *testing.T, f *figures.Set) {
	t.Helper()
	f.Report(t)
	for _, k := range []string{"unreadable_vaults", "unreadable_sessions", "retired_opened"} {
		if f.Get(k) != 0 {
			t.Errorf("%s = %d, want 0", k, f.Get(k))
		}
	}
	if f.Get("headers_scanned") == 0 || f.Get("envelopes_scanned") == 0 {
		t.Errorf("the scans found no header or no envelope: they tested nothing")
	}
}

func needRedis(t *testing.T) string {
	t.Helper()
	servicetest.Require(t, "SESSIONVAULT_REDIS_URL", "Redis server", "scripts/with-redis")
	return fmt.Sprintf("%s%s-%d", redisLoc, strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// TestCrashRetire runs the retirement harness for passwd, slot removal
// and rotate-key on the file backend and on a real Redis.
func TestCrashRetire(t *testing.T) {
	for _, role := range []string{"passwdn", "slots", "retirerotate"} {
		t.Run(roleName(role)+"/file", func(t *testing.T) {
			checkRetire(t, runRetire(t, role, t.TempDir()+"/vault", "file", retireSessions(), retireKills()))
		})
		t.Run(roleName(role)+"/redis", func(t *testing.T) {
			loc := needRedis(t)
			checkRetire(t, runRetire(t, role, loc, "redis", retireSessions(), retireKills()))
		})
	}
}

// TestCrashRetireScannerSelfTest changes the passphrase without a purge
// (the behaviour before retirement existed) and checks that the scan
// finds the retired passphrase opening the kept previous header, on the
// file backend and on a real Redis (where the previous header lies in the
// hash's other slot, layout 2).
func TestCrashRetireScannerSelfTest(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		f := figures.New("crash/retire-selftest")
		f.Add("retired_opened", int64(unpurgedFindings(t, t.TempDir()+"/vault")))
		f.Report(t)
	})
	t.Run("redis", func(t *testing.T) {
		unpurgedFindings(t, needRedis(t))
	})
}

// unpurgedFindings runs a passphrase change without purge on loc and
// returns what the scan finds; it fails the test when that is nothing.
func unpurgedFindings(t *testing.T, loc string) int {
	t.Helper()
	createMany(t, loc, 3)
	runToEnd(t, "unpurgedpasswd", loc, "A", "B")
	rep, err := scanLoc(context.Background(), retired.New(retired.Credentials{
		Passphrases: [][]byte{[]byte(passA)}, LivePassphrases: [][]byte{[]byte(passB)},
	}), loc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) == 0 {
		t.Fatal("the scanner found nothing after a passphrase change without purge: it is blind")
	}
	for _, f := range rep.Findings {
		t.Logf("found: %s", f.Where)
	}
	return len(rep.Findings)
}
