package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
)

// traceKey is the context key under which a test hands a *cmdTrace to
// the commands of one call.
type traceKey struct{}

// cmdTrace records the commands a client sends for one call (a context
// carries it), and the bytes of the strings in their replies.
type cmdTrace struct {
	cmds       [][]string
	replyBytes int
}

// traceHook is a go-redis hook that fills the *cmdTrace of each command's
// context, so that concurrent calls are traced apart.
type traceHook struct{}

func (traceHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (traceHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if tr, ok := ctx.Value(traceKey{}).(*cmdTrace); ok {
			var args []string
			for _, a := range cmd.Args() {
				args = append(args, fmt.Sprint(a))
			}
			tr.cmds = append(tr.cmds, args)
			if sc, ok := cmd.(*goredis.SliceCmd); ok {
				for _, x := range sc.Val() {
					if s, ok := x.(string); ok {
						tr.replyBytes += len(s)
					}
				}
			}
		}
		return err
	}
}
func (traceHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// tracedGet runs b.Get and returns what it sent.
func tracedGet(t *testing.T, b *Backend, name string) ([]byte, backends.Version, *cmdTrace, error) {
	t.Helper()
	tr := &cmdTrace{}
	blob, v, err := b.Get(context.WithValue(context.Background(), traceKey{}, tr), name)
	return blob, v, tr, err
}

// hmgetFields returns the fields each HMGET of tr asked for, and fails t
// if tr holds anything but HMGETs, followed, with script, by one run of
// the get script (EVALSHA, and EVAL when the server did not have it yet).
func hmgetFields(t *testing.T, tr *cmdTrace, script bool) [][]string {
	t.Helper()
	var out [][]string
	ran := false
	for _, c := range tr.cmds {
		switch {
		case c[0] == "hmget" && !ran:
			out = append(out, c[2:])
		case script && (c[0] == "evalsha" || c[0] == "eval"):
			ran = true
		default:
			t.Fatalf("Get sent %q", c)
		}
	}
	if script != ran {
		t.Fatalf("Get ran the get script: %v, want %v", ran, script)
	}
	return out
}

// wantReads fails t unless tr is exactly the HMGETs of fields.
func wantReads(t *testing.T, what string, tr *cmdTrace, script bool, fields ...[]string) {
	t.Helper()
	got := hmgetFields(t, tr, script)
	if fmt.Sprint(got) != fmt.Sprint(fields) {
		t.Fatalf("%s: Get sent HMGETs of %q, want %q", what, got, fields)
	}
}

// TestGetSlotGuess: against the real server, Get's common case is one
// HMGET of a single slot, with the blob's bytes and nothing of the
// previous generation in the reply; a first Get of a name is one HMGET of
// both slots; after another client's Put moved the blob, one more HMGET
// reads the right slot and returns the new blob; this Backend's own
// Puts and Restores keep the guess right.
func TestGetSlotGuess(t *testing.T) {
	ctx := context.Background()
	a, prefix := newTestBackend(t)
	a.client.AddHook(traceHook{})
	o, err := NewFromURL(ctx, redisURL(t), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	all := getFields
	d0, d1 := slotFields[fieldD0], slotFields[fieldD1]
	blob := func(g string) []byte { return []byte(strings.Repeat(g, 512)) }

	get := func(what string, want string, script bool, fields ...[]string) backends.Version {
		t.Helper()
		got, v, tr, err := tracedGet(t, a, "s")
		if err != nil || string(got) != string(blob(want)) {
			t.Fatalf("%s: Get = %.20q, %v; want %s", what, got, err, want)
		}
		wantReads(t, what, tr, script, fields...)
		if len(fields) == 1 && len(fields[0]) == 4 && tr.replyBytes > len(got)+len(v)+2 {
			t.Fatalf("%s: reply of %d bytes for a blob of %d: more than one slot", what, tr.replyBytes, len(got))
		}
		return v
	}

	v, err := o.Put(ctx, "s", blob("1"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = o.Put(ctx, "s", blob("2"), v); err != nil { // s=1: d0 holds gen 1, d1 gen 2
		t.Fatal(err)
	}
	get("first Get", "2", false, all)
	get("guess hit", "2", false, d1)
	get("guess hit again", "2", false, d1)

	if _, err := o.Put(ctx, "s", blob("3"), v); err != nil { // s=0
		t.Fatal(err)
	}
	v = get("miss after another client's Put", "3", false, d1, d0)
	get("hit after the miss", "3", false, d0)

	// The refresh cycle: Get, Put of what was read, Get.
	for i, g := range []string{"4", "5", "6", "7"} {
		if v, err = a.Put(ctx, "s", blob(g), v); err != nil {
			t.Fatal(err)
		}
		slot := d1
		if i%2 == 1 {
			slot = d0
		}
		get("Get after own Put "+g, g, false, slot)
	}
	// Stored: s=0, d0 gen 7, d1 gen 6.
	if v, err = a.Restore(ctx, "s", v); err != nil {
		t.Fatal(err)
	}
	get("Get after own Restore", "6", false, d1)

	// A conflicting Put drops the guess: the next Get reads both slots.
	if _, err := o.Put(ctx, "s", blob("8"), v); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "s", blob("x"), v); !errors.Is(err, backends.ErrConflict) {
		t.Fatalf("Put of a stale version: %v, want ErrConflict", err)
	}
	get("Get after a conflict", "8", false, all)

	// An unconditional Put: where its blob went depends on what was
	// stored, so the guess is dropped.
	if _, err := a.Put(ctx, "s", blob("9"), backends.Any); err != nil {
		t.Fatal(err)
	}
	get("Get after Put(Any)", "9", false, all)

	// Delete forgets the name: a Get of the missing name is a full HMGET
	// and the script that tells it is missing.
	if err := a.Delete(ctx, "s", backends.Any); err != nil {
		t.Fatal(err)
	}
	_, _, tr, err := tracedGet(t, a, "s")
	if !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	wantReads(t, "Get after Delete", tr, true, all)
	if _, err := a.Put(ctx, "s", blob("a"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	get("Get after own create", "a", false, d0)

	// Deleted by another client while guessed: the guessed HMGET finds
	// nothing, the script tells it is missing, and the guess goes.
	if err := o.Delete(ctx, "s", backends.Any); err != nil {
		t.Fatal(err)
	}
	_, _, tr, err = tracedGet(t, a, "s")
	if !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after another client's Delete: %v, want ErrNotFound", err)
	}
	wantReads(t, "Get after another client's Delete", tr, true, d0)
	if _, ok := a.slots.get("s"); ok {
		t.Fatal("guess kept for a missing name")
	}

	// A foreign value under a guessed name: typed errors, no blob.
	if _, err := a.Put(ctx, "s", blob("b"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t, redisURL(t))
	key := "{" + prefix + "}:b:s"
	c.Del(ctx, key)
	c.Set(ctx, key, "not a hash", 0)
	if _, _, tr, err = tracedGet(t, a, "s"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a string under a guessed name: %v, want ErrCorrupt", err)
	}
	wantReads(t, "WRONGTYPE", tr, false, d0)
	c.Del(ctx, key)
	c.HSet(ctx, key, "layout", "3", "v", "1-0123456789abcdef", "s", "0", "d0", "b")
	if _, _, _, err = tracedGet(t, a, "s"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a later layout under a guessed name: %v, want ErrCorrupt", err)
	}
}

// TestGetSlotGuessKeepPreviousOff: without a previous generation the blob
// is always in slot 0, and every Get of the refresh cycle is one HMGET of
// it.
func TestGetSlotGuessKeepPreviousOff(t *testing.T) {
	ctx := context.Background()
	a, _ := newTestBackend(t, WithKeepPrevious(false))
	a.client.AddHook(traceHook{})
	v, err := a.Put(ctx, "s", []byte("g0"), backends.Absent)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		g := fmt.Sprintf("g%d", i+1)
		if v, err = a.Put(ctx, "s", []byte(g), v); err != nil {
			t.Fatal(err)
		}
		got, gv, tr, err := tracedGet(t, a, "s")
		if err != nil || string(got) != g || gv != v {
			t.Fatalf("Get = %q %q %v, want %q %q", got, gv, err, g, v)
		}
		wantReads(t, g, tr, false, slotFields[fieldD0])
	}
}

// TestGetSlotGuessLayout1: a layout-1 hash (written by hand, as the
// layout-1 code did: v, d, pv, pd) is read by a first full HMGET, then by
// one HMGET of its d; once another client's Put moves it to layout 2, one
// more HMGET reads the new slot. This Backend's own Put of a layout-1
// hash leaves the guess right.
func TestGetSlotGuessLayout1(t *testing.T) {
	ctx := context.Background()
	a, prefix := newTestBackend(t)
	a.client.AddHook(traceHook{})
	o, err := NewFromURL(ctx, redisURL(t), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	c := rawClient(t, redisURL(t))
	for _, n := range []string{"x", "y"} {
		if err := c.HSet(ctx, "{"+prefix+"}:b:"+n, "v", "5-0123456789abcdef", "d", "cur-"+n,
			"pv", "4-0123456789abcdef", "pd", "prev-"+n).Err(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what, name, want string, fields ...[]string) backends.Version {
		t.Helper()
		got, v, tr, err := tracedGet(t, a, name)
		if err != nil || string(got) != want {
			t.Fatalf("%s: Get = %q, %v; want %q", what, got, err, want)
		}
		wantReads(t, what, tr, false, fields...)
		return v
	}
	for _, n := range []string{"x", "y"} {
		check("first Get of layout 1", n, "cur-"+n, getFields)
		check("guessed Get of layout 1", n, "cur-"+n, slotFields[fieldD])
	}
	// Another client's Put moves x to layout 2 (s=1).
	if _, err := o.Put(ctx, "x", []byte("new-x"), "5-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	check("after another client's Put", "x", "new-x", slotFields[fieldD], slotFields[fieldD1])
	check("hit after the move", "x", "new-x", slotFields[fieldD1])
	// This Backend's own Put of y.
	if _, err := a.Put(ctx, "y", []byte("new-y"), "5-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	check("after own Put of layout 1", "y", "new-y", slotFields[fieldD1])
	if _, err := a.Restore(ctx, "y", backends.Any); err != nil {
		t.Fatal(err)
	}
	check("after own Restore(Any)", "y", "cur-y", getFields)
}

// TestGetSlotGuessConcurrent: writers on three Backends race
// compare-and-set Puts on one name while readers on a fourth Get it; run
// with -race. Every blob a Get returns is the one written with the
// version it came with, and no Get sends more than maxSlotReads+1
// HMGETs.
func TestGetSlotGuessConcurrent(t *testing.T) {
	ctx := context.Background()
	r, prefix := newTestBackend(t)
	r.client.AddHook(traceHook{})
	if _, err := r.Put(ctx, "c", []byte("start"), backends.Absent); err != nil {
		t.Fatal(err)
	}
	var written sync.Map // version -> blob
	type seen struct {
		v    backends.Version
		blob string
	}
	var mu sync.Mutex
	var reads []seen
	var writers, readers sync.WaitGroup
	var stop atomic.Bool
	var misses, maxCmds atomic.Int64
	errc := make(chan error, 16)
	for w := range 3 {
		wb, err := NewFromURL(ctx, redisURL(t), WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer wb.Close()
		for g := range 2 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := range 40 {
					got, v, err := wb.Get(ctx, "c")
					if err != nil {
						errc <- fmt.Errorf("writer Get: %w", err)
						return
					}
					mu.Lock()
					reads = append(reads, seen{v, string(got)})
					mu.Unlock()
					blob := fmt.Sprintf("w%d.%d.%d-%s", w, g, i, strings.Repeat("z", 1000))
					nv, err := wb.Put(ctx, "c", []byte(blob), v)
					if err == nil {
						written.Store(nv, blob)
					} else if !errors.Is(err, backends.ErrConflict) {
						errc <- fmt.Errorf("writer Put: %w", err)
						return
					}
				}
			}()
		}
	}
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !stop.Load() {
				tr := &cmdTrace{}
				got, v, err := r.Get(context.WithValue(ctx, traceKey{}, tr), "c")
				if err != nil {
					errc <- fmt.Errorf("reader Get: %w", err)
					return
				}
				// Commands of Get itself: a HELLO (and whatever else
				// go-redis sends to set up a connection it dials for this
				// Get) is not one of them.
				var n int64
				for _, c := range tr.cmds {
					if len(c) > 0 && c[0] != "hello" && c[0] != "client" {
						n++
					}
				}
				for {
					m := maxCmds.Load()
					if n <= m || maxCmds.CompareAndSwap(m, n) {
						break
					}
				}
				if n > 1 {
					misses.Add(1)
				}
				mu.Lock()
				reads = append(reads, seen{v, string(got)})
				mu.Unlock()
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	n := 0
	for _, s := range reads {
		if s.blob == "start" {
			continue
		}
		w, ok := written.Load(s.v)
		if !ok || w.(string) != s.blob {
			t.Fatalf("Get returned %.12q with version %s, which was written with %.12q", s.blob, s.v, w)
		}
		n++
	}
	t.Logf("%d reads checked, %d reader Gets needed more than one HMGET, at most %d commands in one Get",
		n, misses.Load(), maxCmds.Load())
	if m := maxCmds.Load(); m > maxSlotReads+1 {
		t.Fatalf("a Get sent %d commands, more than maxSlotReads+1", m)
	}
	if misses.Load() == 0 {
		t.Log("no reader Get met a moved slot this run")
	}
}

// TestGetSlotReadsBounded: a server that always claims the blob is in the
// other slot than the one asked for (what writes landing between every
// two reads would look like) costs a Get at most maxSlotReads guessed
// HMGETs and one of all fields, whose single snapshot it then trusts; a
// forged length in a guessed read ends in ErrBadReply as in a full one.
// The server is a fake because a real one cannot flip a slot between
// every two reads of one client on demand.
func TestGetSlotReadsBounded(t *testing.T) {
	ctx := context.Background()
	const v = "1-0123456789abcdef"
	bulk := func(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
	var hmgets atomic.Int64
	var forge atomic.Bool
	srv := startHostile(t, func(w *bufio.Writer, cmd []string) {
		if strings.ToUpper(cmd[0]) != "HMGET" {
			w.WriteString("-ERR unexpected\r\n")
			return
		}
		hmgets.Add(1)
		fields := cmd[2:]
		switch {
		case len(fields) == len(getFields):
			w.WriteString("*6\r\n" + bulk("2") + bulk(v) + bulk("0") + bulk("blob") + bulk("prev") + "$-1\r\n")
		case forge.Load():
			w.WriteString("*4\r\n" + bulk("2") + bulk(v) + bulk("0") + "$1610612736\r\nabc")
		default:
			other := "1"
			if fields[3] == "d1" {
				other = "0"
			}
			w.WriteString("*4\r\n" + bulk("2") + bulk(v) + bulk(other) + bulk("wrong slot"))
		}
	})
	b, err := NewFromURL(ctx, srv.url(), WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, want := range []int64{1, maxSlotReads + 1, maxSlotReads + 1} {
		hmgets.Store(0)
		got, gv, err := b.Get(ctx, "s")
		if err != nil || string(got) != "blob" || gv != v {
			t.Fatalf("Get %d = %q %q %v", i, got, gv, err)
		}
		if n := hmgets.Load(); n != want {
			t.Fatalf("Get %d sent %d HMGETs, want %d", i, n, want)
		}
	}
	forge.Store(true)
	if _, _, err := b.Get(ctx, "s"); !errors.Is(err, ErrBadReply) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get with a forged length in the guessed read: %v, want ErrBadReply and ErrCorrupt", err)
	}
}

// TestSlotGuessesBounded: the guesses stay within maxSlotGuesses names,
// and the newest one is kept.
func TestSlotGuessesBounded(t *testing.T) {
	var s slotGuesses
	for i := range maxSlotGuesses + 100 {
		s.set(fmt.Sprintf("n%d", i), slotGuess{v: "1-0123456789abcdef", field: fieldD1})
	}
	if len(s.m) != maxSlotGuesses {
		t.Fatalf("%d guesses kept, want %d", len(s.m), maxSlotGuesses)
	}
	last := fmt.Sprintf("n%d", maxSlotGuesses+99)
	if g, ok := s.get(last); !ok || g.field != fieldD1 {
		t.Fatalf("newest guess %v %v", g, ok)
	}
}
