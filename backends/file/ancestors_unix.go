//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The vault folder's own mode and owner protect its entries only if nobody
// else can rename or replace the folder itself, or any folder above it: a
// user who can write the parent could move the vault folder away and put
// one of theirs in its place between two runs. checkAncestors applies the
// rule OpenSSH's StrictModes applies to ~/.ssh: every folder from / down
// to the vault folder's parent must be owned by root or by this user and
// not writable by group or others, unless it has the sticky bit (as /tmp
// does: there others may create entries but cannot rename or remove ours).
// A symbolic link on the way is followed only if root or this user owns it
// (its folder is checked like any other); its target is then checked the
// same way, from /. Finally the folder that was opened must be the one the
// checked path leads to (same device and inode), so that a swap between
// the open and the check is caught too.

// maxAncestorLinks bounds the symbolic links followed while checking the
// ancestors, like the kernel's own limit (ELOOP after 40).
const maxAncestorLinks = 40

// checkParents checks the folders above the vault folder path, before it
// is created: nothing is made below a folder that would be refused.
func checkParents(path string, euid int) error {
	_, _, err := checkedParent(path, euid)
	return err
}

// checkedParent returns path made absolute and its parent folder with
// every link resolved, having checked the way there.
func checkedParent(path string, euid int) (abs, parent string, err error) {
	if abs, err = filepath.Abs(path); err != nil {
		return "", "", err
	}
	links := 0
	parent, err = resolveChecked(filepath.Dir(abs), euid, &links)
	return abs, parent, err
}

// checkAncestors checks the folders above the vault folder path, which is
// open as fd, for this euid.
func checkAncestors(path string, fd int, euid int) error {
	abs, parent, err := checkedParent(path, euid)
	if err != nil {
		return err
	}
	// The vault folder itself is not followed if it is a link (the open
	// used O_NOFOLLOW); it must be the very folder that fd holds.
	var atPath, opened unix.Stat_t
	final := filepath.Join(parent, filepath.Base(abs))
	if err := unix.Lstat(final, &atPath); err != nil {
		return &UnsafeError{Path: path, Problem: "could not be found again through its checked parent folders (" + err.Error() + ")", Fix: "check that nobody moves the folders above the vault"}
	}
	if err := unix.Fstat(fd, &opened); err != nil {
		return err
	}
	if atPath.Dev != opened.Dev || atPath.Ino != opened.Ino {
		return &UnsafeError{Path: path, Problem: "was replaced while it was opened (" + final + " is another folder now)", Fix: "check who else can write the folders above the vault"}
	}
	return nil
}

// resolveChecked returns dir with every symbolic link resolved, having
// checked each folder and link on the way (see checkAncestors).
func resolveChecked(dir string, euid int, links *int) (string, error) {
	cur := "/"
	if err := checkAncestor(cur, euid); err != nil {
		return "", err
	}
	rest := strings.Split(strings.TrimPrefix(filepath.Clean(dir), "/"), "/")
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		if comp == "" || comp == "." {
			continue
		}
		if comp == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, comp)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			return "", &os.PathError{Op: "lstat", Path: next, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if *links++; *links > maxAncestorLinks {
				return "", &UnsafeError{Path: next, Problem: "leads through more than 40 symbolic links", Fix: "name the vault folder by its real path"}
			}
			if st.Uid != 0 && int(st.Uid) != euid {
				return "", &UnsafeError{
					Path:    next,
					Problem: fmt.Sprintf("is a symbolic link above the vault folder owned by uid %d, neither root nor this process's uid %d", st.Uid, euid),
					Fix:     "name the vault folder by its real path, or keep the vault elsewhere",
				}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			// Start again from /, the target's components first.
			rest = append(strings.Split(strings.TrimPrefix(filepath.Clean(target), "/"), "/"), rest...)
			cur = "/"
			continue
		}
		if err := checkAncestorStat(next, &st, euid); err != nil {
			return "", err
		}
		cur = next
	}
	return cur, nil
}

func checkAncestor(path string, euid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return checkAncestorStat(path, &st, euid)
}

// checkAncestorStat applies the rule to one folder above the vault.
func checkAncestorStat(path string, st *unix.Stat_t, euid int) error {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &UnsafeError{Path: path, Problem: "is " + kindName(uint32(st.Mode)) + " above the vault folder, not a folder", Fix: "name the vault folder by its real path"}
	}
	if st.Uid != 0 && int(st.Uid) != euid {
		return &UnsafeError{
			Path:    path,
			Problem: fmt.Sprintf("is a folder above the vault folder owned by uid %d, neither root nor this process's uid %d: its owner could replace the vault folder", st.Uid, euid),
			Fix:     "keep the vault in a folder that only you (and root) control",
		}
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return &UnsafeError{
			Path:    path,
			Problem: fmt.Sprintf("is a folder above the vault folder that group or others can write (mode %04o, no sticky bit): they could replace the vault folder", st.Mode&0o7777),
			Fix:     "chmod go-w " + shellQuote(path) + ", or keep the vault elsewhere",
		}
	}
	return nil
}
