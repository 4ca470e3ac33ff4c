package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sessionvault/sessionvault/internal/servicetest"
)

// asMainEnv, when set to 1, makes the test binary run vaultctl's Main
// instead of the tests: the pty tests and the benchmarks start vaultctl
// as a real second process this way, as os/exec's tests do.
const asMainEnv = "VAULTCTL_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(naiveMigrateEnv) == "1" {
		os.Exit(naiveMigrateMain(os.Args[1:]))
	}
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(Main())
	}
	testscript.Main(m, map[string]func(){
		"vaultctl": func() { os.Exit(Main()) },
		// with-umask MODE CMD ARGS: runs vaultctl (CMD must be vaultctl)
		// under the given umask, in its own process.
		"with-umask": withUmaskMain,
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: false,
		Setup:               setupScript,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    cmdExits,
			"jsonpath": cmdJSONPath,
			"jsonlen":  cmdJSONLen,
			"flipbit":  cmdFlipBitBlob,
			"blob":     cmdBlob,
			"cmpblob":  cmdCmpBlob,
			"setprev":  cmdSetPrev,
			"setcur":   cmdSetCur,
			"noprev":   cmdNoPrev,
			"jsoneq":   cmdJSONEq,
			"jsonsub":  cmdJSONSub,
			"mkfile":   cmdMkfile,
			"perm":     cmdPerm,
			"require":  cmdRequire,
			"forgekdf": cmdForgeKDF,
		},
		Condition: scriptCondition,
	})
}

// setupScript gives every script a private vault folder and a fixed
// passphrase in the environment (scripts that test other sources unset
// it), and keeps the user's real keychain and data out of reach.
func setupScript(env *testscript.Env) error {
	env.Setenv("VAULTCTL_DIR", env.WorkDir+"/vault")
	env.Setenv("XDG_DATA_HOME", env.WorkDir+"/xdg")
	env.Setenv("HOME", env.WorkDir+"/home")
	env.Setenv("VAULTCTL_REDIS_URL", "")
	env.Setenv("VAULTCTL_REDIS_PREFIX", "")
	// A fresh Redis key prefix per script run: runs never see each
	// other's vaults on a shared server.
	env.Setenv("RANDOM_PREFIX", rand.Text())
	for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "SESSIONVAULT_REDIS_URL", "SESSIONVAULT_SECRET_SERVICE", "CI"} {
		env.Setenv(k, os.Getenv(k))
	}
	return nil
}

// scriptCondition adds conditions: [secretservice] when a real Secret
// Service runs (scripts/with-keyring), [redis] when a Redis server does
// (scripts/with-redis), [root] when running as root (permission checks
// on other users' files do not apply to root).
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "secretservice":
		return os.Getenv("SESSIONVAULT_SECRET_SERVICE") == "1", nil
	case "redis":
		return os.Getenv("SESSIONVAULT_REDIS_URL") != "", nil
	case "root":
		return os.Geteuid() == 0, nil
	case "ci":
		return servicetest.Required(), nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// cmdExits runs a program and checks its exact exit code:
//
//	exits 4 vaultctl status
//
// Its stdout and stderr are kept for the stdout/stderr commands.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// lastStdout parses the last command's stdout as exactly one JSON
// document and fails the script otherwise.
func lastStdout(ts *testscript.TestScript) any {
	out := ts.ReadFile("stdout")
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("stdout is not JSON: %v", err)
	}
	if dec.More() {
		ts.Fatalf("stdout holds more than one JSON document")
	}
	var rest any
	if err := dec.Decode(&rest); err == nil {
		ts.Fatalf("stdout holds more than one JSON document")
	}
	return v
}

// walk follows a path like .sessions.0.name into v.
func walk(ts *testscript.TestScript, v any, path string) any {
	if path == "." {
		return v
	}
	for _, k := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				ts.Fatalf("jsonpath %s: no key %q", path, k)
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("jsonpath %s: bad index %q for a list of %d", path, k, len(x))
			}
			v = x[i]
		default:
			ts.Fatalf("jsonpath %s: %q into a %T", path, k, v)
		}
	}
	return v
}

// cmdJSONPath checks one value in the JSON document on stdout:
//
//	jsonpath .error.code 4
//	jsonpath .sessions.0.name alpha
//	! jsonpath .sessions.0.valid true
//
// WANT is compared as JSON when it parses as JSON, else as a string.
// "jsonpath .path" alone checks that the path exists.
func cmdJSONPath(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: jsonpath PATH [WANT]")
	}
	got := walk(ts, lastStdout(ts), args[0])
	if len(args) == 1 {
		return
	}
	var want any
	dec := json.NewDecoder(strings.NewReader(args[1]))
	dec.UseNumber()
	if err := dec.Decode(&want); err != nil || dec.More() {
		want = args[1]
	}
	eq := reflect.DeepEqual(got, want)
	if eq == neg {
		b, _ := json.Marshal(got)
		ts.Fatalf("jsonpath %s = %s, want %s%s", args[0], b, map[bool]string{true: "not ", false: ""}[neg], args[1])
	}
}

// cmdJSONLen checks the length of a list or object on stdout.
func cmdJSONLen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonlen PATH N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("jsonlen: bad length %q", args[1])
	}
	got := -1
	switch x := walk(ts, lastStdout(ts), args[0]).(type) {
	case []any:
		got = len(x)
	case map[string]any:
		got = len(x)
	default:
		ts.Fatalf("jsonlen %s: not a list or object", args[0])
	}
	if got != n {
		ts.Fatalf("jsonlen %s = %d, want %d", args[0], got, n)
	}
}

// cmdFlipBit flips one bit of a file in place, keeping its mode:
//
//	flipbit FILE OFFSET   (a negative OFFSET counts from the end)
func cmdFlipBit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbit FILE OFFSET")
	}
	name := ts.MkAbs(args[0])
	b, err := os.ReadFile(name)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("flipbit: offset %s outside a file of %d bytes", args[1], len(b))
	}
	b[off] ^= 0x01
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	ts.Check(err)
	_, err = f.Write(b)
	ts.Check(err)
	ts.Check(f.Close())
}

// readJSON parses a file as one JSON document.
func readJSON(ts *testscript.TestScript, name string) any {
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(name)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("%s: %v", name, err)
	}
	return v
}

// sameJSON compares two JSON values; strings that both parse as RFC 3339
// times compare as instants (2025-01-01T00:00:00Z equals
// 2025-01-01T00:00:00.000Z), which is what "same instants" means.
func sameJSON(a, b any, path string) (bool, string) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false, path
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok {
				return false, path + "." + k
			}
			if ok, p := sameJSON(xv, yv, path+"."+k); !ok {
				return false, p
			}
		}
		return true, ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false, path
		}
		for i := range x {
			if ok, p := sameJSON(x[i], y[i], fmt.Sprintf("%s.%d", path, i)); !ok {
				return false, p
			}
		}
		return true, ""
	case string:
		y, ok := b.(string)
		if !ok {
			return false, path
		}
		if x == y {
			return true, ""
		}
		tx, err1 := time.Parse(time.RFC3339Nano, x)
		ty, err2 := time.Parse(time.RFC3339Nano, y)
		if err1 == nil && err2 == nil && tx.Equal(ty) {
			return true, ""
		}
		return false, path
	}
	return reflect.DeepEqual(a, b), path
}

// cmdJSONEq checks that two files hold the same JSON values.
func cmdJSONEq(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: jsoneq FILE1 FILE2")
	}
	ok, where := sameJSON(readJSON(ts, args[0]), readJSON(ts, args[1]), "")
	if ok == neg {
		if neg {
			ts.Fatalf("%s and %s hold the same JSON", args[0], args[1])
		}
		ts.Fatalf("%s and %s differ at %q", args[0], args[1], where)
	}
}

// cmdJSONSub checks that the value at PATH in FILE1 equals FILE2.
func cmdJSONSub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonsub FILE1 PATH FILE2")
	}
	got := walk(ts, readJSON(ts, args[0]), args[1])
	if ok, where := sameJSON(got, readJSON(ts, args[2]), args[1]); !ok {
		ts.Fatalf("%s%s differs from %s at %q", args[0], args[1], args[2], where)
	}
}

// cmdMkfile writes a file of SIZE bytes that starts like JSON.
func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkfile NAME SIZE")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	b := bytes.Repeat([]byte(" "), n)
	copy(b, `{"tokens":`)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}

// cmdPerm checks a file's permission bits: perm FILE 0600.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %#o, want %s%#o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdRequire fails the script when a service is missing. Scripts skip
// first outside CI, so this fails only where services are required
// (CI=true or SESSIONVAULT_REQUIRE_SERVICES=1):
//
//	[!secretservice] [!ci] skip 'run under scripts/with-keyring'
//	require secretservice
func cmdRequire(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: require secretservice|redis")
	}
	have, err := scriptCondition(args[0])
	ts.Check(err)
	if !have {
		ts.Fatalf("%s is required here: run the tests under %s", args[0],
			map[string]string{"secretservice": "scripts/with-keyring", "redis": "scripts/with-redis"}[args[0]])
	}
}
