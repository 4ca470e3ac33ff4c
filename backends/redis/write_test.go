package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// TestNonceSource: nonces are 2*nonceBytes lowercase hex digits, distinct
// across several refills of the buffer, and every byte handed out is
// cleared from it (nothing handed out stays behind in memory).
func TestNonceSource(t *testing.T) {
	var s nonceSource
	seen := map[string]bool{}
	for i := range 3*nonceBatch + 5 {
		n, err := s.newNonce()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != 2*nonceBytes || !validVersion("1-"+n) {
			t.Fatalf("nonce %q is not %d lowercase hex digits", n, 2*nonceBytes)
		}
		if seen[n] {
			t.Fatalf("nonce %q handed out twice", n)
		}
		seen[n] = true
		used := len(s.buf) - s.left
		for j, c := range s.buf[:used] {
			if c != 0 {
				t.Fatalf("after nonce %d: byte %d of the buffer, already handed out, is not cleared", i, j)
			}
		}
	}
	// appendHex appends after what dst holds.
	out, err := s.appendHex([]byte("7-"))
	if err != nil {
		t.Fatal(err)
	}
	if !validVersion(string(out)) {
		t.Fatalf("appendHex gave %q", out)
	}
}

// TestPutCommonPathReply: the put script's common path (a compare-and-set
// on a layout-2 blob) replies 1 instead of echoing the version, and Put
// returns the version the client computed, which is what the hash holds:
// one above ifVersion, with a fresh nonce, the replaced version as pv.
func TestPutCommonPathReply(t *testing.T) {
	ctx := context.Background()
	b, prefix := newTestBackend(t)
	rc := rawClient(t, redisURL(t))
	key := "{" + prefix + "}:b:s"
	v1, err := b.Put(ctx, "s", []byte("one"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		v2, err := b.Put(ctx, "s", []byte("two"), v1)
		if err != nil {
			t.Fatal(err)
		}
		n1, _ := counter(v1)
		n2, _ := counter(v2)
		if n2 != n1+1 || v2[len(v2)-2*nonceBytes:] == v1[len(v1)-2*nonceBytes:] {
			t.Fatalf("Put %d: %s after %s", i, v2, v1)
		}
		got, err := rc.HMGet(ctx, key, "v", "pv").Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != string(v2) || got[1] != string(v1) {
			t.Fatalf("Put %d returned %s after %s; the hash holds v=%v pv=%v", i, v2, v1, got[0], got[1])
		}
		v1 = v2
	}
	// The script itself, on the common path: the reply is the integer 1.
	next := "99-0123456789abcdef"
	r, err := putScript.Run(ctx, rc, []string{key, "{" + prefix + "}:names", "{" + prefix + "}:seq"},
		string(v1), "three", next, "0123456789abcdef 1 65536 0 s").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := r.(int64); !ok || n != 1 {
		t.Fatalf("common path replied %#v, want 1", r)
	}
	if got, _ := rc.HGet(ctx, key, "v").Result(); got != next {
		t.Fatalf("hash holds v=%s, want %s", got, next)
	}
}

// TestWriteAfterScriptFlush: after SCRIPT FLUSH (what a server restart
// does to the script cache) every write, sent as EVALSHA, gets NOSCRIPT and
// is sent again as EVAL, alone and in the pipeline with WAIT
// (WithReplicaAck; this server has no replica, so the write lands on the
// master and reports ErrNotReplicated).
func TestWriteAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	rc := rawClient(t, redisURL(t))
	for _, ack := range []bool{false, true} {
		var opts []Option
		if ack {
			opts = append(opts, WithReplicaAck(1, 5*time.Millisecond))
		}
		b, prefix := newTestBackend(t, opts...)
		wantErr := func(err error) {
			t.Helper()
			if ack && !errors.Is(err, ErrNotReplicated) || !ack && err != nil {
				t.Fatalf("ack=%v: %v", ack, err)
			}
		}
		flush := func() {
			t.Helper()
			if err := rc.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		flush()
		v1, err := b.Put(ctx, "s", []byte("one"), backends.Absent) // the script's other paths
		wantErr(err)
		flush()
		v2, err := b.Put(ctx, "s", []byte("two"), v1) // the common path
		wantErr(err)
		if got, _ := rc.HGet(ctx, "{"+prefix+"}:b:s", "v").Result(); v1 == "" || got != string(v2) {
			t.Fatalf("ack=%v: Put returned %q after %q; the hash holds %q", ack, v2, v1, got)
		}
		flush()
		v3, err := b.Restore(ctx, "s", v2)
		wantErr(err)
		if blob, v, err := b.Get(ctx, "s"); err != nil || string(blob) != "one" || v != v3 {
			t.Fatalf("ack=%v: after Restore: %q %q %v", ack, blob, v, err)
		}
		flush()
		wantErr(b.Delete(ctx, "s", v3))
		if _, _, err := b.Get(ctx, "s"); !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("ack=%v: after Delete: %v", ack, err)
		}
	}
}

// A version counter over maxCounter (none the scripts write) is not a
// counter: it neither becomes the floor of later writes nor yields a next
// counter the scripts would refuse.
func TestCounterBounds(t *testing.T) {
	ok := backends.Version("999999999999999-0123456789abcdef")
	if n, good := counter(ok); !good || n != maxCounter {
		t.Fatalf("counter(%s) = %d, %v", ok, n, good)
	}
	for _, v := range []backends.Version{"1000000000000000-0123456789abcdef", "18446744073709551615-0123456789abcdef"} {
		if _, good := counter(v); good {
			t.Errorf("counter(%s) accepted", v)
		}
	}
	if c, good := nextCounter("5-0123456789abcdef", 0); !good || c != 6 {
		t.Errorf("nextCounter from 5 = %d, %v", c, good)
	}
	if c, good := nextCounter("5-0123456789abcdef", maxCounter+1); good {
		t.Errorf("nextCounter with a floor over maxCounter = %d, accepted", c)
	}
	if _, good := nextCounter(ok, 0); good {
		t.Error("nextCounter from maxCounter accepted")
	}
}
