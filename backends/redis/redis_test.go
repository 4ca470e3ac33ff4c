package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/backendtest"
)

func TestConformance(t *testing.T) {
	redisURL(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, _ := newTestBackend(t)
		return b
	}, backendtest.Config{})
}

// TestConformanceUserClient runs the suite on a Backend built by New from
// a client the caller configured, as a Sentinel or Cluster user would.
func TestConformanceUserClient(t *testing.T) {
	url := redisURL(t)
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs: []string{opt.Addr}, DB: opt.DB, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { client.Close() })
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, err := New(client, WithPrefix(testPrefix(t, url)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Error(err)
			}
			// Close of a Backend from New leaves the caller's client open.
			if err := client.Ping(context.Background()).Err(); err != nil {
				t.Errorf("client after Backend.Close: %v", err)
			}
		})
		return b
	}, backendtest.Config{Writers: 4, Increments: 10})
}

// TestKeyLayout checks the documented keys and their hash tag: every key
// of a vault hashes to the same Cluster slot.
func TestKeyLayout(t *testing.T) {
	b, prefix := newTestBackend(t)
	ctx := context.Background()
	c := rawClient(t, redisURL(t))
	v, err := b.Put(ctx, "s1", []byte("one"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, backends.HeaderName, []byte("hdr"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	l, err := b.Lease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	tag := "{" + prefix + "}:"
	keys, err := c.Keys(ctx, tag+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{tag + "b:s1": true, tag + "b:.vault": true, tag + "names": true, tag + "seq": true, tag + "lock:s1": true}
	if len(keys) != len(want) {
		t.Fatalf("keys = %q, want %d keys", keys, len(want))
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
	}
	got, err := c.HGetAll(ctx, tag+"b:s1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["layout"] != "2" || got["v"] != string(v) || got["s"] != "0" || got["d0"] != "one" || len(got) != 4 {
		t.Errorf("blob hash = %q, want layout=2 v=%q s=0 d0=one", got, v)
	}
	// A second write goes into the other slot; the first is the previous
	// generation, left where it was.
	v2, err := b.Put(ctx, "s1", []byte("two"), v)
	if err != nil {
		t.Fatal(err)
	}
	got, err = c.HGetAll(ctx, tag+"b:s1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["layout"] != "2" || got["v"] != string(v2) || got["s"] != "1" || got["d0"] != "one" || got["d1"] != "two" ||
		got["pv"] != string(v) || len(got) != 6 {
		t.Errorf("blob hash after a second Put = %q, want layout=2 v=%q s=1 d0=one d1=two pv=%q", got, v2, v)
	}
	names, _ := c.SMembers(ctx, tag+"names").Result()
	if len(names) != 1 || names[0] != "s1" {
		t.Errorf("index = %q, want [s1] (never the header)", names)
	}
	if !validVersion(string(v)) {
		t.Errorf("version %q has not the documented shape", v)
	}
}

// TestVersionsNeverReused: a name deleted and created again gets a version
// that no earlier state of the vault had.
func TestVersionsNeverReused(t *testing.T) {
	b, _ := newTestBackend(t)
	ctx := context.Background()
	seen := map[backends.Version]bool{}
	for range 20 {
		v, err := b.Put(ctx, "n", []byte("x"), backends.Absent)
		if err != nil {
			t.Fatal(err)
		}
		if seen[v] {
			t.Fatalf("version %q reused", v)
		}
		seen[v] = true
		if err := b.Delete(ctx, "n", v); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGarbage puts values that are not blobs under the backend's keys:
// every read and conditional write fails with ErrCorrupt (no panic, no
// huge allocation), and Any overwrites or removes them.
func TestGarbage(t *testing.T) {
	const max = 4096
	b, prefix := newTestBackend(t, WithMaxBlobSize(max))
	ctx := context.Background()
	c := rawClient(t, redisURL(t))
	key := "{" + prefix + "}:b:g"
	big := strings.Repeat("A", max+1)
	cases := []struct {
		name string
		set  func() error
	}{
		{"string", func() error { return c.Set(ctx, key, "not a hash", 0).Err() }},
		{"list", func() error { return c.RPush(ctx, key, "a", "b").Err() }},
		{"set", func() error { return c.SAdd(ctx, key, "a").Err() }},
		{"zset", func() error { return c.ZAdd(ctx, key, goredis.Z{Score: 1, Member: "a"}).Err() }},
		{"hash without fields", func() error { return c.HSet(ctx, key, "x", "y").Err() }},
		{"hash without data", func() error { return c.HSet(ctx, key, "v", "1-0123456789abcdef").Err() }},
		{"hash without version", func() error { return c.HSet(ctx, key, "d", "blob").Err() }},
		{"malformed version", func() error { return c.HSet(ctx, key, "v", "1; DROP", "d", "blob").Err() }},
		{"negative version", func() error { return c.HSet(ctx, key, "v", "-1-0123456789abcdef", "d", "b").Err() }},
		{"uppercase nonce", func() error { return c.HSet(ctx, key, "v", "1-0123456789ABCDEF", "d", "b").Err() }},
		{"huge version", func() error {
			return c.HSet(ctx, key, "v", strings.Repeat("9", 1000)+"-0123456789abcdef", "d", "b").Err()
		}},
		{"oversized data", func() error { return c.HSet(ctx, key, "v", "1-0123456789abcdef", "d", big).Err() }},
		{"layout 2 without slot", func() error {
			return c.HSet(ctx, key, "layout", "2", "v", "1-0123456789abcdef", "d0", "b").Err()
		}},
		{"layout 2 with a malformed slot", func() error {
			return c.HSet(ctx, key, "layout", "2", "v", "1-0123456789abcdef", "s", "2", "d0", "b", "d1", "b").Err()
		}},
		{"layout 2 without the current slot", func() error {
			return c.HSet(ctx, key, "layout", "2", "v", "1-0123456789abcdef", "s", "1", "d0", "b").Err()
		}},
		{"layout 2 without version", func() error { return c.HSet(ctx, key, "layout", "2", "s", "0", "d0", "b").Err() }},
		{"layout 2 oversized data", func() error {
			return c.HSet(ctx, key, "layout", "2", "v", "1-0123456789abcdef", "s", "0", "d0", big).Err()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.Del(ctx, key)
			if err := tc.set(); err != nil {
				t.Fatal(err)
			}
			blob, _, err := b.Get(ctx, "g")
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get: %v (blob %d bytes), want ErrCorrupt", err, len(blob))
			}
			if errors.Is(err, backends.ErrUnavailable) || errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get: %v matches a transient or not-found category", err)
			}
			if strings.Contains(err.Error(), big[:100]) {
				t.Fatal("error message carries stored bytes")
			}
			if _, err := b.Put(ctx, "g", []byte("new"), backends.Absent); err == nil {
				t.Fatal("Put(Absent) over garbage succeeded")
			}
			// The common path of a compare-and-set reads only v, s and
			// layout: a layout-2 hash whose current slot was damaged
			// behind the backend's back is overwritten by a Put with its
			// version (and Previous then refuses the damaged slot).
			if tc.name != "malformed version" && tc.name != "negative version" && tc.name != "uppercase nonce" &&
				tc.name != "huge version" && tc.name != "oversized data" &&
				tc.name != "layout 2 without the current slot" && tc.name != "layout 2 oversized data" {
				if _, err := b.Put(ctx, "g", []byte("new"), "1-0123456789abcdef"); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Put(version) over garbage: %v, want ErrCorrupt", err)
				}
			} else if strings.HasPrefix(tc.name, "layout 2") {
				if _, err := b.Put(ctx, "g", []byte("new"), "1-0123456789abcdef"); err != nil {
					t.Fatalf("Put(version) over a damaged current slot: %v", err)
				}
				if _, _, err := b.Previous(ctx, "g"); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Previous of a damaged slot: %v, want ErrCorrupt", err)
				}
				c.Del(ctx, key)
				tc.set()
			}
			// Any replaces garbage with a real blob.
			v, err := b.Put(ctx, "g", []byte("new"), backends.Any)
			if err != nil {
				t.Fatalf("Put(Any) over garbage: %v", err)
			}
			got, gv, err := b.Get(ctx, "g")
			if err != nil || string(got) != "new" || gv != v {
				t.Fatalf("Get after Put(Any) = %q, %q, %v", got, gv, err)
			}
			if _, _, err := b.Previous(ctx, "g"); !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Previous after replacing garbage: %v, want ErrNotFound (garbage is not a generation)", err)
			}
			// And Delete(Any) removes garbage.
			c.Del(ctx, key)
			tc.set()
			if err := b.Delete(ctx, "g", backends.Any); err != nil {
				t.Fatalf("Delete(Any) of garbage: %v", err)
			}
			if n, _ := c.Exists(ctx, key).Result(); n != 0 {
				t.Fatal("garbage still there after Delete(Any)")
			}
		})
	}

	t.Run("lease key", func(t *testing.T) {
		lkey := "{" + prefix + "}:lock:g"
		c.Set(ctx, lkey, "someone", 0) // no TTL: not a lease of ours
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := b.Lock(tctx, "g"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Lock over a key without TTL: %v, want ErrCorrupt", err)
		}
		c.Del(ctx, lkey)
		c.HSet(ctx, lkey, "a", "b")
		if _, err := b.Lock(tctx, "g"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Lock over a hash: %v, want ErrCorrupt", err)
		}
		c.Del(ctx, lkey)
	})

	t.Run("index", func(t *testing.T) {
		// Names in the index without a blob, and names that are not
		// valid, are not listed.
		c.SAdd(ctx, "{"+prefix+"}:names", "ghost", "../etc", "\x00", ".vault")
		c.Set(ctx, "{"+prefix+"}:b:../etc", "x", 0)
		c.Set(ctx, "{"+prefix+"}:b:.vault", "x", 0)
		if _, err := b.Put(ctx, "real", []byte("r"), backends.Absent); err != nil {
			t.Fatal(err)
		}
		names, err := b.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 1 || names[0] != "real" {
			t.Errorf("List = %q, want [real]: only live, valid names", names)
		}
		c.Del(ctx, "{"+prefix+"}:b:.vault")
	})
}

// TestTooLarge: a blob over the limit is refused before it is sent.
func TestTooLarge(t *testing.T) {
	b, _ := newTestBackend(t, WithMaxBlobSize(10))
	ctx := context.Background()
	if _, err := b.Put(ctx, "x", make([]byte, 11), backends.Any); !errors.Is(err, backends.ErrTooLarge) {
		t.Fatalf("Put of 11 bytes with limit 10: %v", err)
	}
	if _, err := b.Put(ctx, "x", make([]byte, 10), backends.Any); err != nil {
		t.Fatal(err)
	}
}

// TestACL authenticates as an ACL user created for the test: the right
// password works, a wrong one and a user without access to the keys fail
// with ErrPermission, and no error carries the password.
func TestACL(t *testing.T) {
	url := redisURL(t)
	ctx := context.Background()
	admin := rawClient(t, url)
	prefix := testPrefix(t, url)
	user := "svtest-" + randomHex(4)
	password := "pw-" + randomHex(16)
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">"+password,
		"~{"+prefix+"}:*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	other := user + "-nokeys"
	if err := admin.Do(ctx, "ACL", "SETUSER", other, "on", ">"+password, "~elsewhere:*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.Do(ctx, "ACL", "DELUSER", user, other) })

	b, err := NewFromURL(ctx, url, WithPrefix(prefix), WithCredentials(user, []byte(password)))
	if err != nil {
		t.Fatalf("NewFromURL as %s: %v", user, err)
	}
	defer b.Close()
	v, err := b.Put(ctx, "s", []byte("x"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := b.Lock(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	checkPerm := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, backends.ErrPermission) {
			t.Errorf("%s: %v, want ErrPermission", what, err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("%s: error carries the password", what)
		}
	}
	_, err = NewFromURL(ctx, url, WithPrefix(prefix), WithCredentials(user, []byte("wrong")))
	checkPerm("wrong password", err)
	_, err = NewFromURL(ctx, url, WithPrefix(prefix), WithCredentials("nosuchuser", []byte(password)))
	checkPerm("unknown user", err)
	// Credentials in the URL work too, and stay out of errors.
	withPW := strings.Replace(url, "redis://", "redis://"+user+":"+password+"@", 1)
	b2, err := NewFromURL(ctx, withPW, WithPrefix(prefix))
	if err != nil {
		t.Fatalf("credentials in the URL: %v", err)
	}
	if _, _, err := b2.Get(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	b2.Close()
	_, err = NewFromURL(ctx, strings.Replace(url, "redis://", "redis://"+user+":"+password+"x@", 1), WithPrefix(prefix))
	checkPerm("wrong password in the URL", err)

	// A user who may not touch the vault's keys: NOPERM.
	b3, err := NewFromURL(ctx, url, WithPrefix(prefix), WithCredentials(other, []byte(password)))
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	_, _, err = b3.Get(ctx, "s")
	checkPerm("Get without key permission", err)
	_, err = b3.Put(ctx, "s", []byte("y"), v)
	checkPerm("Put without key permission", err)
	_, err = b3.Lock(ctx, "s")
	checkPerm("Lock without key permission", err)
}

func TestNewFromURLErrors(t *testing.T) {
	ctx := context.Background()
	const secret = "hunter2-secret"
	for _, u := range []string{
		"redis://user:" + secret + "@127.0.0.1:bad/0",
		"redis://user:" + secret + "@127.0.0.1:6379/notadb",
		"redis://user:" + secret + "@127.0.0.1:6379/0?nosuchoption=1",
		"rediss://user:" + secret + "@127.0.0.1:6379/0?skip_verify=true",
		"http://user:" + secret + "@127.0.0.1:6379/0",
		"redis://user:" + secret + "@[::1/0",
		"\x7fredis://user:" + secret + "@host",
	} {
		_, err := NewFromURL(ctx, u)
		if err == nil {
			t.Errorf("NewFromURL(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("NewFromURL error %q carries the password", err)
		}
	}
	// Nothing listens on a port we just closed: unavailable, quickly.
	port := freePort(t)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := NewFromURL(cctx, "redis://127.0.0.1:"+itoa(port)+"/0")
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("NewFromURL to a closed port: %v, want ErrUnavailable", err)
	}
	var nerr net.Error
	if !errors.As(err, &nerr) {
		t.Errorf("NewFromURL to a closed port: %v does not wrap the network error", err)
	}
}

func TestOptions(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, p := range []string{"", "a{b", "a}b", "a b", "a\nb", "a\x00b", strings.Repeat("p", MaxPrefixLen+1), "\xff"} {
		if _, err := New(client, WithPrefix(p)); err == nil {
			t.Errorf("WithPrefix(%q) accepted", p)
		}
	}
	for _, n := range []int{0, -1, DefaultMaxBlobSize + 1} {
		if _, err := New(client, WithMaxBlobSize(n)); err == nil {
			t.Errorf("WithMaxBlobSize(%d) accepted", n)
		}
	}
	for _, d := range []time.Duration{0, MinLeaseTTL - 1, MaxLeaseTTL + 1} {
		if _, err := New(client, WithLeaseTTL(d)); err == nil {
			t.Errorf("WithLeaseTTL(%v) accepted", d)
		}
	}
	for _, o := range []Option{WithCredentials("u", []byte("p")), WithDialTimeout(time.Second), WithTLSConfig(testTLSConfig())} {
		if _, err := New(client, o); err == nil {
			t.Error("New accepted a connection option")
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
	if _, err := New(client, WithPrefix("ok:prefix-1"), WithMaxBlobSize(100), WithLeaseTTL(time.Second),
		WithAutoExtend(false), WithKeepPrevious(false)); err != nil {
		t.Errorf("valid options: %v", err)
	}
	// WithCredentials copies the password.
	pw := []byte("secret")
	var c config
	WithCredentials("u", pw)(&c)
	pw[0] = 'X'
	if !bytes.Equal(c.password, []byte("secret")) {
		t.Error("WithCredentials kept the caller's slice")
	}
}

// TestClosed: methods after Close fail with ErrUnavailable; Close twice is
// fine.
func TestClosed(t *testing.T) {
	b, _ := newTestBackend(t)
	ctx := context.Background()
	l, err := b.Lease(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := b.Get(ctx, "x"); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := b.Put(ctx, "x", nil, backends.Any); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Put after Close: %v", err)
	}
	if _, err := b.List(ctx); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("List after Close: %v", err)
	}
	if _, err := b.Lock(ctx, "y"); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Lock after Close: %v", err)
	}
	if err := l.Unlock(ctx); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Unlock after Close: %v", err)
	}
}

// TestKeepPreviousOff: without previous generations, Previous finds none
// and the hash holds one slot.
func TestKeepPreviousOff(t *testing.T) {
	b, prefix := newTestBackend(t, WithKeepPrevious(false))
	ctx := context.Background()
	v, _ := b.Put(ctx, "k", []byte("1"), backends.Absent)
	if _, err := b.Put(ctx, "k", []byte("2"), v); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Previous(ctx, "k"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Previous: %v, want ErrNotFound", err)
	}
	got, _ := rawClient(t, redisURL(t)).HGetAll(ctx, "{"+prefix+"}:b:k").Result()
	if len(got) != 4 || got["d0"] != "2" || got["s"] != "0" {
		t.Fatalf("hash = %q, want layout, v, s=0 and d0=2 only", got)
	}
}

// TestRestoreKeepPreviousOff: a Backend WithKeepPrevious(false) that
// restores a previous generation (one another Backend kept) drops the
// blob it replaces: no copy of it is left in the hash, and Previous finds
// none. With the option on, the same restore keeps it.
func TestRestoreKeepPreviousOff(t *testing.T) {
	ctx := context.Background()
	keeper, prefix := newTestBackend(t)
	for _, keep := range []bool{false, true} {
		name := fmt.Sprintf("k-%v", keep)
		v, err := keeper.Put(ctx, name, []byte("old"), backends.Absent)
		if err != nil {
			t.Fatal(err)
		}
		if v, err = keeper.Put(ctx, name, []byte("replaced"), v); err != nil {
			t.Fatal(err)
		}
		r, err := NewFromURL(ctx, redisURL(t), WithPrefix(prefix), WithKeepPrevious(keep))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Restore(ctx, name, v); err != nil {
			t.Fatalf("keep %v: Restore: %v", keep, err)
		}
		if got, _, err := keeper.Get(ctx, name); err != nil || string(got) != "old" {
			t.Fatalf("keep %v: after Restore Get = %q, %v; want the old blob", keep, got, err)
		}
		prev, _, err := keeper.Previous(ctx, name)
		hash, _ := rawClient(t, redisURL(t)).HGetAll(ctx, "{"+prefix+"}:b:"+name).Result()
		left := 0
		for _, val := range hash {
			if val == "replaced" {
				left++
			}
		}
		switch {
		case keep && (err != nil || string(prev) != "replaced" || left != 1):
			t.Errorf("keep on: Previous = %q, %v; copies of the replaced blob %d; want it kept once", prev, err, left)
		case !keep && (!errors.Is(err, backends.ErrNotFound) || left != 0):
			t.Errorf("keep off: Previous = %q, %v; copies of the replaced blob %d (hash %q); want none", prev, err, left, hash)
		}
	}
}

// TestVersionLenInScript: the Lua scripts hard-code maxVersionLen.
func TestVersionLenInScript(t *testing.T) {
	if maxVersionLen != 37 || !strings.Contains(putScriptSrc, "#cur <= 37") {
		t.Fatalf("maxVersionLen = %d: update the literal in putScript", maxVersionLen)
	}
}
