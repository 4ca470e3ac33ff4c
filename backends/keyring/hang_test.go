package keyring

import (
	"context"
	"errors"
	"testing"
	"time"

	kr "github.com/99designs/keyring"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// blockingRing is a 99designs keyring behind a prompt nobody answers:
// every call waits until the test ends. It is the only fake in these
// tests; a real keychain cannot be made to hang on demand.
type blockingRing struct{ release chan struct{} }

func (r blockingRing) Get(string) (kr.Item, error) {
	<-r.release
	return kr.Item{}, errors.New("released")
}

func (r blockingRing) GetMetadata(string) (kr.Metadata, error) {
	<-r.release
	return kr.Metadata{}, errors.New("released")
}

func (r blockingRing) Set(kr.Item) error {
	<-r.release
	return errors.New("released")
}

func (r blockingRing) Remove(string) error {
	<-r.release
	return errors.New("released")
}

func (r blockingRing) Keys() ([]string, error) {
	<-r.release
	return nil, errors.New("released")
}

func wantTimeout(t *testing.T, what string, err error, start time.Time) {
	t.Helper()
	var te *secretstore.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: %v, want a timeout matching ErrUnavailable and DeadlineExceeded", what, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("%s returned after %v: the caller hung", what, d)
	}
}

func TestPromptNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	cfg := Config{AllowedBackends: []BackendType{SecretServiceBackend}}

	// Open itself (99designs makes D-Bus calls there).
	o := options{timeout: 150 * time.Millisecond, open: func(kr.Config) (kr.Keyring, error) {
		<-release
		return nil, errors.New("released")
	}}
	start := time.Now()
	_, err := open(context.Background(), cfg, o)
	wantTimeout(t, "Open", err, start)

	// Calls on an opened ring.
	o.open = func(kr.Config) (kr.Keyring, error) { return blockingRing{release}, nil }
	k, err := open(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = k.GetKey(ctx, "vault/kek")
	wantTimeout(t, "GetKey with a deadline", err, start)
	start = time.Now()
	err = k.PutKey(context.Background(), "vault/kek", make([]byte, 32))
	wantTimeout(t, "PutKey without a deadline", err, start)
	b, err := k.Backend("ns")
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = b.Put(context.Background(), backends.HeaderName, []byte("h"), backends.Absent)
	wantTimeout(t, "Put", err, start)
}

// Oversized values never reach 99designs: the limits are checked first.
func TestOversizeRefusedBeforeCall(t *testing.T) {
	called := false
	for _, bt := range []BackendType{WinCredBackend, KeyCtlBackend, SecretServiceBackend} {
		o := options{timeout: time.Second, open: func(kr.Config) (kr.Keyring, error) {
			return callRecorder{&called}, nil
		}}
		cfg := Config{AllowedBackends: []BackendType{bt}, KeyCtlScope: "user"}
		k, err := open(t.Context(), cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := k.Backend("ns")
		if err != nil {
			t.Fatal(err)
		}
		max := b.MaxBlobLen("s")
		if max != maxValueLen(bt)-20 {
			t.Fatalf("%s: MaxBlobLen = %d, want %d", bt, max, maxValueLen(bt)-20)
		}
		if _, err := b.Put(t.Context(), "s", make([]byte, max+1), backends.Any); !errors.Is(err, backends.ErrTooLarge) {
			t.Fatalf("%s: Put of MaxBlobLen+1: %v, want ErrTooLarge", bt, err)
		}
		if err := k.PutKey(t.Context(), "v/k", make([]byte, secretstore.MaxKeyLen+1)); !errors.Is(err, backends.ErrTooLarge) {
			t.Fatalf("%s: PutKey of MaxKeyLen+1: %v, want ErrTooLarge", bt, err)
		}
	}
	if called {
		t.Fatal("an oversized value reached the keyring")
	}
}

// callRecorder notes that it was called.
type callRecorder struct{ called *bool }

func (r callRecorder) Get(string) (kr.Item, error) {
	*r.called = true
	return kr.Item{}, kr.ErrKeyNotFound
}
func (r callRecorder) GetMetadata(string) (kr.Metadata, error) {
	*r.called = true
	return kr.Metadata{}, kr.ErrMetadataNotSupported
}
func (r callRecorder) Set(kr.Item) error       { *r.called = true; return nil }
func (r callRecorder) Remove(string) error     { *r.called = true; return nil }
func (r callRecorder) Keys() ([]string, error) { *r.called = true; return nil, nil }
