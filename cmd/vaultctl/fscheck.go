package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// fileProblem is something verify found in the vault folder: a symlink, a
// mode open to others, a file owned by someone else, an entry the layout
// does not have (vaultLayout), or a leftover temp file.
type fileProblem struct {
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
	// Unsafe is true for what makes the vault unsafe (exit 7).
	Unsafe bool `json:"unsafe"`
	// Harmless is true only for leftovers that hold no key material and
	// no plaintext (a temp file of sealed bytes): verify notes them and
	// still passes. Everything else fails verify.
	Harmless bool `json:"harmless"`
}

func (p fileProblem) String() string { return p.Path + " " + p.Problem + ": " + p.Fix }

// checkVaultFiles walks the whole vault folder without following links
// and reports every entry that the layout (vaultLayout, layout.go) does not
// expect, wherever it is, and every expected one that is unsafe: a symlink,
// a mode open to others, another owner, the wrong type, a hard link from
// outside the folder, or the wrong content (a header where a session or a
// lock should be). The backend refuses unsafe paths when it opens them,
// but List skips what is not a session blob, so a symlink planted at a
// session's path would otherwise make that session silently vanish from
// status, and a stray copy of a header would sit unnoticed: verify reports
// them instead.
func checkVaultFiles(dir string) []fileProblem {
	var out []fileProblem
	report := func(path, problem, fix string, unsafe bool) {
		out = append(out, fileProblem{Path: path, Problem: problem, Fix: fix, Unsafe: unsafe})
	}
	check := func(path string, fi fs.FileInfo, isDir bool) bool {
		if fi.Mode()&fs.ModeSymlink != 0 {
			report(path, "is a symbolic link", "remove it (rm "+shQuote(path)+") and restore the real file", true)
			return false
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
			report(path, "is not "+kind, "move it away", true)
			return false
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			report(path, fmt.Sprintf("has mode %#o, open to group or others", perm), cmd+shQuote(path), true)
		}
		if owner, ok := foreignOwner(fi); ok {
			report(path, "is owned by uid "+owner+", not by you", "chown it to yourself or move it away", true)
		}
		return true
	}
	root, err := os.Lstat(dir)
	if err != nil {
		return nil
	}
	if !check(dir, root, true) {
		return out
	}
	links := map[fileKey]int{} // hard links seen inside the folder, per file
	var files []struct {
		path string
		key  fileKey
		n    uint64
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		if rel == "." {
			rel = ""
		}
		name := filepath.Base(p)
		rule := lookupRule(rel, name)
		if key, n, ok := linkCount(fi); ok && fi.Mode().IsRegular() {
			links[key]++
			files = append(files, struct {
				path string
				key  fileKey
				n    uint64
			}{p, key, n})
		}
		if rule == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				check(p, fi, false)
				return nil
			}
			if fi.IsDir() {
				report(p, "is a folder that is not part of the vault layout", "move it out of the vault folder", false)
				return nil // its entries are reported too
			}
			report(p, "is not part of the vault layout and "+sniff(p).describe(), "move it out of the vault folder, or remove it (rm "+shQuote(p)+")", false)
			return nil
		}
		if !check(p, fi, rule.kind == kindDir) {
			if fi.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if rule.kind == kindDir {
			return nil
		}
		got := sniff(p)
		switch {
		case rule.temp && got == contentSession && rule.content == contentSession:
			out = append(out, fileProblem{Path: p, Problem: "is a temp file left by an interrupted write (sealed bytes, no key material)", Fix: "harmless; remove it with rm " + shQuote(p), Harmless: true})
		case rule.temp:
			report(p, "is "+rule.what+" and "+got.describe(), "remove it (rm "+shQuote(p)+") once no vaultctl runs on this vault", false)
		case got != rule.content && (got == contentHeader || rule.content == contentEmpty):
			report(p, "should be "+rule.what+" but "+got.describe(), "move it out of the vault folder", false)
		}
		return nil
	})
	for _, f := range files {
		if uint64(links[f.key]) < f.n {
			report(f.path, fmt.Sprintf("has %d hard links, %d of them outside the vault folder: they keep its bytes after the vault replaces it", f.n, f.n-uint64(links[f.key])), "remove the other links (find / -xdev -samefile "+shQuote(f.path)+")", false)
		}
	}
	return out
}

// shQuote quotes a path for a command the operator can paste.
func shQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
