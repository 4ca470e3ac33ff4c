//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/redis"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// plaintextMarkers are substrings of every session sealSessions writes:
// none may appear in anything migrate writes.
var plaintextMarkers = [][]byte{[]byte("crash-access-"), []byte("crash-refresh-")}

// noPlaintextInFolder fails if any file under dir holds a marker.
func noPlaintextInFolder(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, m := range plaintextMarkers {
			if bytes.Contains(b, m) {
				t.Errorf("%s holds plaintext (%q)", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// noPlaintextInRedis fails if any value under prefix holds a marker.
func noPlaintextInRedis(t *testing.T, url, prefix string) int {
	t.Helper()
	ctx := context.Background()
	b, err := redis.NewFromURL(ctx, url, redis.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	names, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(names, backends.HeaderName) {
		blob, _, err := b.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range plaintextMarkers {
			if bytes.Contains(blob, m) {
				t.Errorf("redis %s/%s holds plaintext (%q)", prefix, name, m)
			}
		}
	}
	return len(names)
}

func migrateDoc(t *testing.T, out string) migrateResult {
	t.Helper()
	var r migrateResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("migrate --json: %v: %q", err, out)
	}
	return r
}

// TestMigrateFileRedisFile moves a vault from the file backend to a real
// Redis and back, and file to file (200 sessions; SESSIONVAULT_LONG=1:
// 1,000): every session
// opens at each destination, nothing there holds plaintext, a rerun is a
// no-op, and a destination holding another vault is refused.
func TestMigrateFileRedisFile(t *testing.T) {
	servicetest.Require(t, "SESSIONVAULT_REDIS_URL", "Redis server", "scripts/with-redis")
	url := os.Getenv("SESSIONVAULT_REDIS_URL")
	n := figures.Scale(0, 200, 1000)
	dir, pass := makeVault(t, n)
	prefix := "migrate-" + rand.Text()
	env := map[string]string{}

	start := time.Now()
	code, out, stderr := runCLI(t, env, "--dir", dir, "--passphrase-file", pass, "--json", "migrate", "--to-backend", "redis", "--to-redis-url", url, "--to-redis-prefix", prefix)
	if code != 0 {
		t.Fatalf("file -> redis: exit %d: %s", code, stderr)
	}
	toRedis := time.Since(start)
	if r := migrateDoc(t, out); r.Sessions != n || r.Copied != n || r.Verified != n || r.Resumed {
		t.Fatalf("file -> redis: %+v", r)
	}
	checkAllOpenWith(t, n, "--backend", "redis", "--redis-url", url, "--redis-prefix", prefix, "--passphrase-file", pass)
	got := noPlaintextInRedis(t, url, prefix)
	if got != n {
		t.Fatalf("redis holds %d sessions, want %d", got, n)
	}
	f := figures.New("vaultctl/migrate")
	f.Add("sessions", int64(n))
	f.Add("file_to_redis_ms", toRedis.Milliseconds())
	f.Add("redis_values_scanned", int64(got+1))
	defer f.Report(t)

	// Again, the URL from $VAULTCTL_TO_REDIS_URL: nothing to copy,
	// everything verified.
	code, out, stderr = runCLI(t, map[string]string{toRedisURLEnv: url}, "--dir", dir, "--passphrase-file", pass, "--json", "migrate", "--to-backend", "redis", "--to-redis-prefix", prefix)
	if r := migrateDoc(t, out); code != 0 || r.Copied != 0 || r.Kept != n || !r.Resumed {
		t.Fatalf("rerun: exit %d %+v: %s", code, r, stderr)
	}

	// Redis -> file, with the URL from the environment.
	back := filepath.Join(t.TempDir(), "back")
	start = time.Now()
	code, _, stderr = runCLI(t, map[string]string{toRedisURLEnv: "unused", redisURLEnv: url}, "--backend", "redis", "--redis-prefix", prefix, "--passphrase-file", pass, "migrate", "--to-backend", "file", "--to-dir", back)
	if code != 0 {
		t.Fatalf("redis -> file: exit %d: %s", code, stderr)
	}
	toFile := time.Since(start)
	checkAllOpen(t, back, pass, n)
	files := noPlaintextInFolder(t, back)
	if files < n+1 {
		t.Fatalf("%d files in %s, want at least %d", files, back, n+1)
	}
	f.Add("redis_to_file_ms", toFile.Milliseconds())
	f.Add("files_scanned", int64(files))

	// File -> file.
	third := filepath.Join(t.TempDir(), "third")
	start = time.Now()
	if code, _, stderr := runCLI(t, env, "--dir", back, "--passphrase-file", pass, "migrate", "--to-backend", "file", "--to-dir", third); code != 0 {
		t.Fatalf("file -> file: exit %d: %s", code, stderr)
	}
	f.Add("file_to_file_ms", time.Since(start).Milliseconds())
	checkAllOpen(t, third, pass, n)
	f.Add("files_scanned", int64(noPlaintextInFolder(t, third)))
	t.Logf("%d sessions: file -> redis %v, redis -> file %v", n, toRedis, toFile)

	// A destination that holds another vault is refused, unchanged.
	other, _ := makeVault(t, 3)
	before := snapshot(t, other)
	code, _, stderr = runCLI(t, env, "--dir", dir, "--passphrase-file", pass, "migrate", "--to-backend", "file", "--to-dir", other)
	if code == 0 || !strings.Contains(stderr, "another vault") {
		t.Fatalf("migrate onto another vault: exit %d: %s", code, stderr)
	}
	if after := snapshot(t, other); !equalSnapshots(before, after) {
		t.Fatal("the other vault was changed")
	}
	f.Inc("other_vault_refused")
}

// snapshot returns every file under dir (locks excepted) and its bytes.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "/locks/") {
			return err
		}
		b, _ := os.ReadFile(p)
		m[p] = string(b)
		return nil
	})
	return m
}

func equalSnapshots(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestMigrateKill9 kills migrate (file to file) with SIGKILL at random
// moments: a destination is never a vault with sessions missing (the
// header is written last), and rerunning the same command finishes the
// job with every session opening. Bounded: 200 sessions, 8 kills;
// SESSIONVAULT_LONG=1: 500 sessions, 40 kills.
func TestMigrateKill9(t *testing.T) {
	n, kills := figures.Scale(0, 200, 500), figures.Scale(0, 8, 40)
	dir, pass := makeVault(t, n)
	dst := filepath.Join(t.TempDir(), "dst")
	args := []string{"--dir", dir, "--passphrase-file", pass, "migrate", "--to-backend", "file", "--to-dir", dst}
	// Time one whole migrate (to a scratch destination) to aim the kills
	// inside a run.
	scratch := filepath.Join(t.TempDir(), "scratch")
	start := time.Now()
	if code, _, stderr := runCLI(t, nil, "--dir", dir, "--passphrase-file", pass, "migrate", "--to-backend", "file", "--to-dir", scratch); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	window := time.Since(start) + 20*time.Millisecond // plus process start-up
	r := migrateKillLoop(t, kills, window, baseEnv(t), args, dst, pass, n, func(t *testing.T, dir, pass string, n int) int {
		_, bad := checkAllOpen(t, dir, pass, n)
		return bad
	})
	if code, _, stderr := runCLI(t, nil, args...); code != 0 {
		t.Fatalf("rerun after kills: exit %d: %s", code, stderr)
	}
	_, bad := checkAllOpen(t, dst, pass, n)
	noPlaintextInFolder(t, dst)
	t.Logf("%d sessions, killed %d times (%d of them after the header was written), then a rerun finished", n, r.killed, r.headerSeen)
	newMigrateFigures("vaultctl/migrate-kill9", n, r, bad).Report(t)
	if r.killed == 0 {
		t.Fatal("every run finished before its kill: no kill landed mid-migrate")
	}
}

// migrateKills is what migrateKillLoop saw.
type migrateKills struct {
	killed, headerSeen, badAfterKill, finishedFirst int
}

// migrateKillLoop starts the test binary with env and args (a migrate to
// the file vault dst) kills times, killing it with SIGKILL at a random
// moment below max; a run that finished first has its destination
// removed, so that the next one starts over. After each kill, a
// destination with a header must be a whole vault: unreadable counts its
// sessions that are missing or do not open.
func migrateKillLoop(t *testing.T, kills int, max time.Duration, env, args []string, dst, pass string, n int, unreadable func(t *testing.T, dir, pass string, n int) int) migrateKills {
	t.Helper()
	var r migrateKills
	for i := 0; i < kills; i++ {
		if killRandomlyEnv(t, max, env, args...) {
			r.finishedFirst++
			if err := os.RemoveAll(dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		r.killed++
		// Killed: either no header yet, or a complete vault.
		if _, err := os.Stat(filepath.Join(dst, "vault.hdr")); err == nil {
			r.headerSeen++
			r.badAfterKill += unreadable(t, dst, pass, n)
		}
	}
	return r
}

// newMigrateFigures is the figures of a kill loop over n sessions, and
// the sessions unreadable after the rerun.
func newMigrateFigures(name string, n int, r migrateKills, badAfterRerun int) *figures.Set {
	f := figures.New(name)
	f.Add("sessions", int64(n))
	f.Add("kills", int64(r.killed))
	f.Add("killed_after_header", int64(r.headerSeen))
	f.Add("unreadable_after_kill", int64(r.badAfterKill))
	f.Add("unreadable_after_rerun", int64(badAfterRerun))
	f.Add("finished_first", int64(r.finishedFirst))
	return f
}
