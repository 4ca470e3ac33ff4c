package crashtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sessionvault/sessionvault/backends"
)

// inPlace is a deliberately broken backends.Backend for the harness's
// self-test: Put truncates the target and writes the blob in two halves
// with an fsync in between, the way a naive writer (os.WriteFile, or the
// seed's fs::write) overwrites a file in place. A kill between the halves
// leaves a torn file. Everything else is correct, so that the vault runs
// on it normally until a kill lands in that window.
type inPlace struct {
	dir string
	mu  sync.Mutex
}

func newInPlace(dir string) (*inPlace, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &inPlace{dir: dir}, nil
}

func (b *inPlace) path(name string) string {
	if name == backends.HeaderName {
		return filepath.Join(b.dir, "header")
	}
	return filepath.Join(b.dir, "s-"+name)
}

func version(blob []byte) backends.Version {
	sum := sha256.Sum256(blob)
	return backends.Version(hex.EncodeToString(sum[:8]))
}

func (b *inPlace) Get(ctx context.Context, name string) ([]byte, backends.Version, error) {
	blob, err := os.ReadFile(b.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", backends.ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	return blob, version(blob), nil
}

func (b *inPlace) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (backends.Version, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, err := os.ReadFile(b.path(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if ifVersion != backends.Absent && ifVersion != backends.Any {
			return "", backends.ErrConflict
		}
	case err != nil:
		return "", err
	case ifVersion != backends.Any && version(cur) != ifVersion:
		return "", backends.ErrConflict
	}
	f, err := os.OpenFile(b.path(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	half := len(blob) / 2
	if _, err := f.Write(blob[:half]); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if _, err := f.Write(blob[half:]); err != nil {
		return "", err
	}
	return version(blob), f.Close()
}

func (b *inPlace) Delete(ctx context.Context, name string, ifVersion backends.Version) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := os.Remove(b.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return backends.ErrNotFound
	}
	return err
}

func (b *inPlace) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "s-"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (b *inPlace) Close() error { return nil }
