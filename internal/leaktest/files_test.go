package leaktest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/internal/figures"
	"github.com/sessionvault/sessionvault/session"
)

// TestNoPlaintextInTheVaultFolder holds every write of a session save at
// each of its steps (the write is slowed to a stop by the fault seam) and,
// while it is held, reads every file in the vault folder, temp files and
// previous generations included: no marker may appear, in any encoding.
func TestNoPlaintextInTheVaultFolder(t *testing.T) {
	ctx := context.Background()
	ms := newMarkers()
	f := figures.New("leaks/files")
	f.Declare("snapshots", "files_read", "temp_files_seen", "leaks")
	var mu sync.Mutex
	var dir string
	var failures []string
	snapshot := func(at string) {
		mu.Lock()
		defer mu.Unlock()
		f.Inc("snapshots")
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil // removed meanwhile
			}
			f.Inc("files_read")
			if strings.Contains(d.Name(), ".tmp-") {
				f.Inc("temp_files_seen")
			}
			if found := ms.find(b); len(found) > 0 {
				f.Inc("leaks")
				failures = append(failures, fmt.Sprintf("%s: %s holds %v", at, p, found))
			}
			return nil
		})
	}
	hook := func(ctx context.Context, s file.StepInfo) error {
		if s.Op == "put" {
			snapshot(fmt.Sprintf("%s %q before %s", s.Op, s.Name, s.Step))
		}
		return nil
	}
	dir, _, v := newVault(t, file.WithStepHook(hook))
	m, err := session.NewManager(ctx, v.Store(sessionName), session.WithAutoSave(true))
	if err != nil {
		t.Fatal(err)
	}
	lr, ck := ms.login(), ms.cookies()
	if err := m.CreateSessionFromLoginResult(ctx, lr, &ck); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateTokens(ctx, ms.tokens()); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateCookies(ctx, session.AuthCookies{Additional: map[string]session.Secret{"more": secret(ms.Cookie)}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	snapshot("after Close")
	f.Report(t)
	for _, s := range failures {
		t.Error(s)
	}
	// Self-check: a plaintext temp file, as a naive writer would leave,
	// is seen.
	leaks := f.Get("leaks")
	doc := ms.sessionJSON()
	plantErr := os.WriteFile(filepath.Join(dir, "sessions", ".bot.sealed.tmp-0123456789abcdef"), doc, 0o600)
	if plantErr != nil {
		t.Fatal(plantErr)
	}
	snapshot("self-check")
	if f.Get("leaks") != leaks+1 {
		t.Error("a planted plaintext temp file went unseen: the harness cannot see leaks")
	}
	if f.Get("temp_files_seen") == 0 {
		t.Error("no snapshot saw a temp file: the harness did not look while a write was in progress")
	}
}
