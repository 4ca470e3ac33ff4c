package file

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStatFieldsMatchFstat checks that fstatat and fstat report the
// fields the checks read as fstatat(2) and fstat(2) do, for a file with
// two links.
func TestStatFieldsMatchFstat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p, filepath.Join(dir, "g")); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, "f", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var want, got, gotFd unix.Stat_t
	if err := unix.Fstatat(dfd, "f", &want, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if err := fstatat(dfd, "f", &got, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if err := fstat(fd, &gotFd); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*unix.Stat_t{&got, &gotFd} {
		if st.Dev != want.Dev || st.Ino != want.Ino || st.Nlink != want.Nlink || st.Mode != want.Mode ||
			st.Uid != want.Uid || st.Size != want.Size {
			t.Fatalf("got dev %d ino %d nlink %d mode %o uid %d size %d, want dev %d ino %d nlink %d mode %o uid %d size %d",
				st.Dev, st.Ino, st.Nlink, st.Mode, st.Uid, st.Size, want.Dev, want.Ino, want.Nlink, want.Mode, want.Uid, want.Size)
		}
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := fstatat(dfd, "l", &got, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if got.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Fatalf("a symbolic link reported as mode %o", got.Mode)
	}
	if err := fstatat(dfd, "missing", &got, unix.AT_SYMLINK_NOFOLLOW); err != unix.ENOENT {
		t.Fatalf("a missing name: %v, want ENOENT", err)
	}
}

// TestStatLeavesTimestampsUnseen checks that fstatat does not mark the
// file's timestamps as seen (multigrain timestamps, Linux 6.13 and
// later): a write right after it keeps a coarse change time, taken
// before the write began, as after no stat at all, where after
// fstatat(2) every write takes a new fine-grained time, at least the
// time the write began. Skipped where fstatat(2) does not force that
// (older kernels, filesystems without multigrain timestamps): there,
// nothing tells the two apart.
func TestStatLeavesTimestampsUnseen(t *testing.T) {
	dir := t.TempDir()
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, "f", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	write := func() {
		t.Helper()
		if _, err := unix.Pwrite(fd, []byte{1}, 0); err != nil {
			t.Fatal(err)
		}
	}
	ctime := func() int64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil { // marks the times seen
			t.Fatal(err)
		}
		return st.Ctim.Nano()
	}
	// fine counts, over trials, the writes after stat that took a time
	// from within the write (a fine-grained one).
	const trials = 100
	fine := func(stat func() error) int {
		t.Helper()
		n := 0
		for range trials {
			ctime()
			write() // takes a fine-grained time: unseen again
			if err := stat(); err != nil {
				t.Fatal(err)
			}
			began := time.Now().UnixNano()
			write()
			if ctime() >= began {
				n++
			}
		}
		return n
	}
	var st unix.Stat_t
	full := fine(func() error { return unix.Fstatat(dfd, "f", &st, unix.AT_SYMLINK_NOFOLLOW) })
	none := fine(func() error { return nil })
	if full < trials || none == trials {
		t.Skipf("fstatat(2) does not force fine-grained timestamps here (%d of %d writes after it, %d of %d after no stat)", full, trials, none, trials)
	}
	ours := fine(func() error { return fstatat(dfd, "f", &st, unix.AT_SYMLINK_NOFOLLOW) })
	oursFd := fine(func() error { return fstat(fd, &st) })
	if ours > trials/2 || oursFd > trials/2 {
		t.Fatalf("fine-grained times in %d (fstatat) and %d (fstat) of %d writes after our stat, %d of %d after no stat: it marks the times seen",
			ours, oursFd, trials, none, trials)
	}
	t.Logf("fine-grained times: %d of %d after fstatat(2), %d after no stat, %d after fstatat, %d after fstat", full, trials, none, ours, oursFd)
}
