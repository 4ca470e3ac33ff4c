//go:build unix

package main

import (
	"path/filepath"
	"regexp"
	"testing"
)

func TestGeneratePassphraseOpens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v")
	code, out, stderr := runCLI(t, nil, append([]string{"--dir", dir, "init", "--generate-passphrase"}, floorKDF...)...)
	if code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	m := regexp.MustCompile(`shown this once \(keep it somewhere safe\): (\S+)\n`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no passphrase in %q", stderr)
	}
	if regexp.MustCompile(regexp.QuoteMeta(m[1])).MatchString(out) {
		t.Fatal("the passphrase went to stdout")
	}
	if code, _, stderr := runCLI(t, map[string]string{passphraseEnv: m[1]}, "--dir", dir, "status"); code != 0 {
		t.Fatalf("the generated passphrase does not open the vault: %d %s", code, stderr)
	}
	seen := map[string]bool{}
	for range 100 {
		p := string(generatePassphrase())
		if len(p) != 35 || seen[p] || weakPassphrase([]byte(p)) != "" {
			t.Fatalf("generated %q", p)
		}
		seen[p] = true
	}
}
