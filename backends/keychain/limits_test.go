package keychain

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// The limits are exact: the largest value fits the platform's limit as
// go-keyring applies it, one byte more does not.
func TestPlatformLimits(t *testing.T) {
	for _, account := range []string{"v/k", "blobs/" + strings.Repeat("n", 128) + "/" + strings.Repeat("s", 128)} {
		// Windows: go-keyring refuses a password (our base64) over 2560 bytes.
		n := maxValueLen("windows", Service, account)
		if encodedLen(n) > windowsMaxCredentialBlob || encodedLen(n+1) <= windowsMaxCredentialBlob {
			t.Errorf("windows: max %d bytes encodes to %d, %d to %d; limit %d", n, encodedLen(n), n+1, encodedLen(n+1), windowsMaxCredentialBlob)
		}
		// macOS: go-keyring refuses a `security -i` command line over 4096
		// bytes; build it as go-keyring does.
		n = maxValueLen("darwin", Service, account)
		line := func(n int) int {
			inner := base64.StdEncoding.EncodeToString(make([]byte, n))
			pw := darwinPasswordPrefix + base64.StdEncoding.EncodeToString([]byte(inner))
			return len(fmt.Sprintf("add-generic-password -U -s %s -a %s -w %s\n", Service, account, pw))
		}
		if line(n) > darwinMaxCommandLine || line(n+1) <= darwinMaxCommandLine {
			t.Errorf("darwin %q: max %d bytes makes a %d-byte line, %d bytes a %d-byte line; limit %d",
				account, n, line(n), n+1, line(n+1), darwinMaxCommandLine)
		}
	}
	if n := maxValueLen("windows", Service, "v/k"); n != 1920 {
		t.Errorf("windows limit = %d, want 1920", n)
	}
	if n := maxValueLen("linux", Service, "v/k"); n != secretServiceMaxValue {
		t.Errorf("linux limit = %d, want %d", n, secretServiceMaxValue)
	}
}

// On every platform an oversized blob is refused with ErrTooLarge before
// any keychain call.
func TestOversizeRefusedBeforeCall(t *testing.T) {
	for _, goos := range []string{"windows", "darwin", "linux"} {
		s := &store{p: mustNotCall{t}, service: Service, goos: goos}
		k := &Keychain{ks: secretstore.New(s, secretstore.Options{Name: "keychain", Timeout: time.Second}), service: Service}
		b, err := k.Backend("ns")
		if err != nil {
			t.Fatal(err)
		}
		max := b.MaxBlobLen(backends.HeaderName)
		if max <= 0 || max+20 != maxValueLen(goos, Service, "blobs/ns/"+backends.HeaderName) {
			t.Fatalf("%s: MaxBlobLen = %d", goos, max)
		}
		_, err = b.Put(t.Context(), backends.HeaderName, make([]byte, max+1), backends.Any)
		if !errors.Is(err, backends.ErrTooLarge) {
			t.Fatalf("%s: Put of MaxBlobLen+1 bytes: %v, want ErrTooLarge", goos, err)
		}
		t.Logf("%s: %v", goos, err)
	}
}

// blockingProvider is go-keyring behind a prompt nobody answers: every
// call waits until the test ends. It is the only fake in these tests; a
// real keychain cannot be made to hang on demand.
type blockingProvider struct{ release chan struct{} }

func (p blockingProvider) Get(string, string) (string, error) {
	<-p.release
	return "", errors.New("released")
}

func (p blockingProvider) Set(string, string, string) error {
	<-p.release
	return errors.New("released")
}

func (p blockingProvider) Delete(string, string) error {
	<-p.release
	return errors.New("released")
}

func TestPromptNeverAnswers(t *testing.T) {
	p := blockingProvider{release: make(chan struct{})}
	defer close(p.release)
	k, err := newKeychain(config{service: Service, timeout: 150 * time.Millisecond, p: p})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, start time.Time) {
		t.Helper()
		var te *secretstore.TimeoutError
		if !errors.As(err, &te) || !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want a timeout matching ErrUnavailable and DeadlineExceeded", what, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s returned after %v: the caller hung", what, d)
		}
	}
	// The caller's deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = k.GetKey(ctx, "vault/kek")
	check("GetKey with a deadline", err, start)
	// The package's timeout, for a context without a deadline.
	start = time.Now()
	err = k.PutKey(context.Background(), "vault/kek", make([]byte, 32))
	check("PutKey without a deadline", err, start)
	t.Logf("error: %v", err)
}
