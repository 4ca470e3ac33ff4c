package faulttest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

// Deliberately broken backends for the harness's self-test: the file
// backend, each with one property broken, so that the harness (saveCase)
// must report that property and only that one.

// untypedPut turns the backend's typed errors into bare strings.
type untypedPut struct{ *file.Backend }

func (b untypedPut) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	v, err := b.Backend.Put(ctx, name, blob, ifVersion)
	if err != nil {
		return "", errors.New("put failed")
	}
	return v, nil
}

// truncatingPut checks the version, then empties the stored session
// before it writes the new one, as a naive in-place writer does (one that
// overwrites the current copy, not a spare slot): a failed write loses
// the old content.
type truncatingPut struct {
	*file.Backend
	dir string
}

func (b truncatingPut) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	if name != sessionName {
		return b.Backend.Put(ctx, name, blob, ifVersion)
	}
	if _, v, err := b.Backend.Get(ctx, name); err == nil && ifVersion != backends.Any && v != ifVersion {
		return "", backends.ErrConflict
	}
	os.Truncate(filepath.Join(b.dir, "sessions", sessionName+".sealed"), 0)
	return b.Backend.Put(ctx, name, blob, backends.Any)
}

// litteringPut leaves a temp file behind when a write fails.
type litteringPut struct {
	*file.Backend
	dir string
}

func (b litteringPut) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	v, err := b.Backend.Put(ctx, name, blob, ifVersion)
	if err != nil {
		os.WriteFile(filepath.Join(b.dir, "sessions", "."+name+".sealed.tmp-stray"), blob, 0o600)
	}
	return v, err
}

// TestFaultHarnessCatchesBrokenBackends runs the session-save harness on
// each broken backend and checks that it reports the broken property.
func TestFaultHarnessCatchesBrokenBackends(t *testing.T) {
	for _, c := range []struct {
		name string
		wrap func(*file.Backend, string) backends.Backend
		got  func(caseResult) error
	}{
		{"untyped errors", func(b *file.Backend, _ string) backends.Backend { return untypedPut{b} }, func(r caseResult) error { return r.untyped }},
		{"in-place write", func(b *file.Backend, dir string) backends.Backend { return truncatingPut{b, dir} }, func(r caseResult) error { return r.lost }},
		{"temp file left", func(b *file.Backend, dir string) backends.Backend { return litteringPut{b, dir} }, func(r caseResult) error { return r.tempLeft }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := saveCase(t, file.StepFsync, syscall.EIO, c.wrap)
			if err := c.got(r); err == nil {
				t.Fatalf("the harness did not notice a backend with %s: %+v", c.name, r)
			} else {
				t.Logf("noticed: %v", err)
			}
		})
	}
	// And the intact backend passes the same case.
	if r := saveCase(t, file.StepFsync, syscall.EIO, nil); r != (caseResult{}) {
		t.Fatalf("the intact backend: %+v", r)
	}
}
