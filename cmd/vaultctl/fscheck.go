package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// fileProblem is something verify found in the vault folder that the
// storage would refuse or ignore: a symlink, a mode open to others, a
// file owned by someone else, or a leftover temp file.
type fileProblem struct {
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
	// Unsafe is true for what makes the vault unsafe (exit 7), false for
	// harmless leftovers.
	Unsafe bool `json:"unsafe"`
}

func (p fileProblem) String() string { return p.Path + " " + p.Problem + ": " + p.Fix }

// checkVaultFiles walks the vault folder and its sessions/ and locks/
// folders (the file backend's layout) without following links. The
// backend refuses unsafe paths when it opens them, but List skips what is
// not a session blob, so a symlink planted at a session's path would
// otherwise make that session silently vanish from status: verify reports
// it instead.
func checkVaultFiles(dir string) []fileProblem {
	var out []fileProblem
	check := func(path string, isDir bool) {
		fi, err := os.Lstat(path)
		if err != nil {
			return
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			out = append(out, fileProblem{Path: path, Problem: "is a symbolic link", Fix: "remove it (rm " + shQuote(path) + ") and restore the real file", Unsafe: true})
			return
		}
		cmd := "chmod 600 "
		if isDir {
			cmd = "chmod 700 "
		}
		if fi.IsDir() != isDir {
			kind := "a folder"
			if !isDir {
				kind = "a regular file"
			}
			out = append(out, fileProblem{Path: path, Problem: "is not " + kind, Fix: "move it away", Unsafe: true})
			return
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			out = append(out, fileProblem{Path: path, Problem: fmt.Sprintf("has mode %#o, open to group or others", perm), Fix: cmd + shQuote(path), Unsafe: true})
		}
		if owner, ok := foreignOwner(fi); ok {
			out = append(out, fileProblem{Path: path, Problem: "is owned by uid " + owner + ", not by you", Fix: "chown it to yourself or move it away", Unsafe: true})
		}
	}
	check(dir, true)
	for _, sub := range []string{"sessions", "locks"} {
		d := filepath.Join(dir, sub)
		check(d, true)
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			if strings.Contains(e.Name(), ".tmp-") {
				out = append(out, fileProblem{Path: p, Problem: "is a temp file left by an interrupted write", Fix: "harmless; remove it with rm " + shQuote(p)})
				continue
			}
			check(p, false)
		}
	}
	check(filepath.Join(dir, "vault.hdr"), false)
	return out
}

// shQuote quotes a path for a command the operator can paste.
func shQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
