//go:build linux

package powerloss

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Options configure a file system.
type Options struct {
	// Torn makes Cut tear files: of every file whose content differs
	// from its durable content, each 512-byte sector is taken at random
	// from the durable or from the current content, and the size is the
	// durable or the current size. Without Torn, such a file returns to
	// its durable content exactly.
	Torn bool

	// Seed seeds the choices Torn makes (0: a random seed).
	Seed uint64
}

// CutReport says what one Cut discarded.
type CutReport struct {
	// Files is the number of files in the durable namespace whose
	// content was not durable (they returned to, or were torn from,
	// their durable content).
	Files int
	// Reverted names those files (relative to the mount), at most
	// maxReported of them.
	Reverted []string
	// TornFiles is how many of those ended as a mix of durable and
	// volatile sectors (or sizes), neither the one nor the other.
	TornFiles int
	// Dirs is the number of folders whose listing differed from their
	// durable listing (un-synced creates, renames, links, unlinks).
	Dirs int
	// Syncs is the number of fsync and fdatasync calls, on files and
	// folders, the file system had seen at the cut.
	Syncs int64
	// Busy says a file was still open on the mount: it was detached
	// lazily, and the descriptors left open reach nothing any more.
	Busy bool
}

// dentry is one name in a durable folder listing.
type dentry struct {
	ino  uint64
	mode uint32 // st_mode (type and permissions)
	link string // a symbolic link's target
}

// FS is a mounted power-loss file system: a FUSE mount at Dir whose
// files live in a backing folder, which holds the volatile view (what
// the page cache of a running machine shows), while FS keeps the durable
// state in memory (what the disk holds). See the package documentation
// for the model.
type FS struct {
	mnt  string // the mount point
	base string // the folder that holds the backing folders
	opts Options

	rng *rand.Rand // Torn's choices; guarded by mu

	mu       sync.Mutex
	gen      int    // the backing folder's generation
	backing  string // base/genN
	server   *fuse.Server
	rootIno  uint64
	dirs     map[uint64]map[string]dentry // durable listing of each folder inode
	files    map[uint64][]byte            // durable content of each file inode (absent: empty)
	refs     map[uint64]int               // how often the durable listings name each inode
	pins     map[uint64]int               // O_PATH descriptors that keep unlinked, durably named inodes alive
	syncs    int64
	freezeAt int64         // the fsync number that never returns (0: none)
	frozen   chan struct{} // closed when the file system froze
	thaw     chan struct{} // closed by Cut: frozen fsyncs return EIO
	isFrozen bool
	cutting  bool

	rebuildRoot string // the folder rebuild writes (for CutReport.Reverted)
}

// New mounts a power-loss file system at mnt (an empty folder), with
// its backing folders under base (an empty folder on a real file
// system, not under mnt). Everything in the backing folder at mount time
// is durable. The caller must be root and /dev/fuse must exist.
func New(mnt, base string, opts Options) (*FS, error) {
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	f := &FS{
		mnt:  mnt,
		base: base,
		opts: opts,
		rng:  rand.New(rand.NewPCG(seed, seed^0x70e71055)),
	}
	f.backing = filepath.Join(base, "gen0")
	if err := os.MkdirAll(f.backing, 0o755); err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

// Dir is the mount point: the folder under test.
func (f *FS) Dir() string { return f.mnt }

// Syncs returns how many fsync and fdatasync calls (on files and
// folders) the file system has seen since it was mounted.
func (f *FS) Syncs() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

// FreezeAtSync arms the file system so that the n-th fsync from now
// (n >= 1) and every one after it never return, as if the power failed
// while the disk was flushing: the n-th takes no effect, and the channel
// returned is closed when it is reached. The caller then kills the
// processes on the mount and calls Cut, which makes the frozen calls
// fail with EIO. n <= 0 disarms.
func (f *FS) FreezeAtSync(n int64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		f.freezeAt = 0
	} else {
		f.freezeAt = f.syncs + n
	}
	return f.frozen
}

// Cut cuts the power: it unmounts the file system, replaces the backing
// folder by the durable state (tearing files when Options.Torn is set),
// and mounts it again at the same place. Kill the processes working on
// the mount first and close every file the caller opened on it: a mount
// that is still busy is detached lazily, and what those processes do
// after the cut no longer reaches the file system.
func (f *FS) Cut() (CutReport, error) {
	f.mu.Lock()
	f.cutting = true
	f.release()
	rep := CutReport{Syncs: f.syncs}
	f.mu.Unlock()

	busy, err := f.unmount()
	rep.Busy = busy
	if err != nil {
		return rep, err
	}

	f.mu.Lock()
	next := filepath.Join(f.base, "gen"+strconv.Itoa(f.gen+1))
	err = f.rebuild(next, &rep)
	for ino, fd := range f.pins {
		unix.Close(fd)
		delete(f.pins, ino)
	}
	if err == nil {
		if err = os.RemoveAll(f.backing); err != nil {
			err = fmt.Errorf("powerloss: removing the old backing folder: %w", err)
		}
		f.gen++
		f.backing = next
	}
	f.mu.Unlock()
	if err != nil {
		return rep, err
	}
	return rep, f.mount()
}

// Close unmounts the file system. The backing folder stays.
func (f *FS) Close() error {
	f.mu.Lock()
	if f.server == nil {
		f.mu.Unlock()
		return nil
	}
	f.cutting = true
	f.release()
	f.mu.Unlock()
	_, err := f.unmount()
	f.mu.Lock()
	defer f.mu.Unlock()
	for ino, fd := range f.pins {
		unix.Close(fd)
		delete(f.pins, ino)
	}
	return err
}

// release makes frozen fsyncs return (once). mu held.
func (f *FS) release() {
	select {
	case <-f.thaw:
	default:
		close(f.thaw)
	}
}

// mount scans the backing folder as the durable state and mounts it.
func (f *FS) mount() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirs = map[uint64]map[string]dentry{}
	f.files = map[uint64][]byte{}
	f.refs = map[uint64]int{}
	f.pins = map[uint64]int{}
	if err := f.scan(f.backing); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(f.backing, &st); err != nil {
		return fmt.Errorf("powerloss: %w", err)
	}
	f.rootIno = st.Ino
	f.freezeAt = 0
	f.syncs = 0
	f.isFrozen = false
	f.cutting = false
	f.frozen = make(chan struct{})
	f.thaw = make(chan struct{})

	root, err := fs.NewLoopbackRoot(f.backing)
	if err != nil {
		return fmt.Errorf("powerloss: %w", err)
	}
	lb := root.(*fs.LoopbackNode)
	top := &node{LoopbackNode: lb, fsys: f}
	lb.RootData.RootNode = top
	zero := time.Duration(0)
	srv, err := fs.Mount(f.mnt, top, &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount: true,
			FsName:      "powerloss",
			Name:        "powerloss",
			AllowOther:  true,
		},
		// No kernel caching of names or attributes across the
		// file system's own state changes: every lookup asks.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	})
	if err != nil {
		return fmt.Errorf("powerloss: mount %s: %w", f.mnt, err)
	}
	f.server = srv
	return nil
}

// unmount unmounts the server, lazily if the mount is busy (busy then
// says so).
func (f *FS) unmount() (busy bool, err error) {
	f.mu.Lock()
	srv := f.server
	f.server = nil
	f.mu.Unlock()
	if srv == nil {
		return false, nil
	}
	if err := syscall.Unmount(f.mnt, 0); err != nil {
		busy = true
		// Busy: a file is still open on the mount. Detach it and
		// abort the connection, so that the server's loops end.
		if err := syscall.Unmount(f.mnt, syscall.MNT_DETACH); err != nil {
			return busy, fmt.Errorf("powerloss: unmount %s: %w", f.mnt, err)
		}
		abortConnections()
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
		return busy, nil
	case <-time.After(unmountWait):
		return busy, fmt.Errorf("powerloss: the server at %s did not stop within %v", f.mnt, unmountWait)
	}
}

// abortConnections aborts every FUSE connection that no mount reaches
// any more (the detached ones), through the fusectl file system.
func abortConnections() {
	const ctl = "/sys/fs/fuse/connections"
	ents, err := os.ReadDir(ctl)
	if err == nil && len(ents) == 0 {
		unix.Mount("fusectl", ctl, "fusectl", 0, "")
		ents, _ = os.ReadDir(ctl)
	}
	mounted := map[string]bool{}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range splitLines(string(b)) {
			var id, parent, major, minor int
			if n, _ := fmt.Sscanf(line, "%d %d %d:%d", &id, &parent, &major, &minor); n == 4 {
				mounted[strconv.Itoa(minor)] = true
			}
		}
	}
	for _, e := range ents {
		if !mounted[e.Name()] {
			os.WriteFile(filepath.Join(ctl, e.Name(), "abort"), []byte("1"), 0)
		}
	}
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// scan records the tree at path as durable.
func (f *FS) scan(path string) error {
	ents, err := listDir(path)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fmt.Errorf("powerloss: %w", err)
	}
	f.setListing(st.Ino, ents)
	for name, d := range ents {
		p := filepath.Join(path, name)
		switch d.mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := f.scan(p); err != nil {
				return err
			}
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
			f.files[d.ino] = b
		}
	}
	return nil
}

// listDir reads the listing of the folder at path.
func listDir(path string) (map[string]dentry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	d := os.NewFile(uintptr(fd), path)
	names, err := d.Readdirnames(-1)
	defer d.Close()
	if err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	out := make(map[string]dentry, len(names))
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // removed meanwhile
		}
		e := dentry{ino: st.Ino, mode: st.Mode}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(fd, name, buf)
			if err == nil {
				e.link = string(buf[:n])
			}
		}
		out[name] = e
	}
	return out, nil
}

// setListing makes ents the durable listing of folder ino and releases
// the pins of inodes no durable listing names any more. mu held.
func (f *FS) setListing(ino uint64, ents map[string]dentry) {
	for _, d := range f.dirs[ino] {
		f.refs[d.ino]--
		if f.refs[d.ino] <= 0 {
			delete(f.refs, d.ino)
			if fd, ok := f.pins[d.ino]; ok {
				unix.Close(fd)
				delete(f.pins, d.ino)
			}
		}
	}
	f.dirs[ino] = ents
	for _, d := range ents {
		f.refs[d.ino]++
	}
}

// enterSync counts one fsync and blocks it for good when the file system
// is frozen. It returns with mu held when the sync may take effect, and
// an errno (mu not held) when it must not.
//
// A frozen fsync also ends when its caller is interrupted: a process
// killed while its request is with the file system waits for the answer
// (the kernel cannot take back a request user space has read), and the
// harness kills it before it cuts.
func (f *FS) enterSync(ctx context.Context) syscall.Errno {
	f.mu.Lock()
	if f.cutting {
		f.mu.Unlock()
		return syscall.EIO
	}
	f.syncs++
	if !f.isFrozen && f.freezeAt > 0 && f.syncs >= f.freezeAt {
		f.isFrozen = true
		close(f.frozen)
	}
	if f.isFrozen {
		thaw := f.thaw
		f.mu.Unlock()
		select {
		case <-thaw:
			return syscall.EIO
		case <-ctx.Done():
			return syscall.EINTR
		}
	}
	return 0
}

// syncFile makes the content of the file open as fd durable.
func (f *FS) syncFile(ctx context.Context, fd int) syscall.Errno {
	if errno := f.enterSync(ctx); errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fs.ToErrno(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0
	}
	// The descriptor may be write-only: read through a new one.
	b, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return fs.ToErrno(err)
	}
	f.files[st.Ino] = b
	return 0
}

// syncDir makes the listing of the folder at the backing path rel
// durable. ino is the folder's inode number (0 for the root, whose FUSE
// node number is not its backing one).
func (f *FS) syncDir(ctx context.Context, ino uint64, rel string) syscall.Errno {
	if errno := f.enterSync(ctx); errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	p := filepath.Join(f.backing, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil || (ino != 0 && st.Ino != ino) {
		return 0 // the folder was removed: nothing of it can become durable
	}
	ents, err := listDir(p)
	if err != nil {
		return syscall.EIO
	}
	f.setListing(st.Ino, ents)
	return 0
}

// pinVictim keeps the inode at backing path p alive if a durable listing
// names it, before an unlink, rmdir or rename removes its name: Cut may
// need it, and its number must not be reused by a new file. mu held.
func (f *FS) pinVictim(p string) {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil || f.refs[st.Ino] == 0 {
		return
	}
	if _, ok := f.pins[st.Ino]; ok {
		return
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		f.pins[st.Ino] = fd
	}
}

// born records that ino is a new inode: whatever an inode of that number
// once held is no durable state of it. mu held.
func (f *FS) born(ino uint64) {
	delete(f.files, ino)
	if _, ok := f.dirs[ino]; ok {
		f.setListing(ino, nil)
		delete(f.dirs, ino)
	}
}

// rebuild writes the durable state into the new backing folder next.
func (f *FS) rebuild(next string, rep *CutReport) error {
	// Where each inode of the old backing folder can be read now.
	where := map[uint64]string{}
	filepath.Walk(f.backing, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			ino := info.Sys().(*syscall.Stat_t).Ino
			if _, ok := where[ino]; !ok {
				where[ino] = p
			}
		}
		return nil
	})
	for ino, fd := range f.pins {
		if _, ok := where[ino]; !ok {
			where[ino] = "/proc/self/fd/" + strconv.Itoa(fd)
		}
	}
	if err := os.MkdirAll(f.base, 0o755); err != nil {
		return fmt.Errorf("powerloss: %w", err)
	}
	os.RemoveAll(next)
	var st unix.Stat_t
	if err := unix.Stat(f.backing, &st); err != nil {
		return fmt.Errorf("powerloss: %w", err)
	}
	if err := os.Mkdir(next, os.FileMode(st.Mode&0o7777)); err != nil {
		return fmt.Errorf("powerloss: %w", err)
	}
	made := map[uint64]string{}
	f.rebuildRoot = next
	return f.rebuildDir(next, f.rootIno, where, made, rep)
}

func (f *FS) rebuildDir(dst string, ino uint64, where map[uint64]string, made map[uint64]string, rep *CutReport) error {
	made[ino] = dst
	ents := f.dirs[ino]
	if cur, ok := where[ino]; ok {
		if now, err := listDir(cur); err == nil && !sameListing(now, ents) {
			rep.Dirs++
		}
	}
	names := make([]string, 0, len(ents))
	for name := range ents {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d := ents[name]
		p := filepath.Join(dst, name)
		perm := d.mode & 0o7777
		var st unix.Stat_t
		if cur, ok := where[d.ino]; ok && unix.Stat(cur, &st) == nil && st.Mode&unix.S_IFMT == d.mode&unix.S_IFMT {
			perm = st.Mode & 0o7777 // mode changes are not modeled: they survive
		}
		switch d.mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if _, ok := made[d.ino]; ok {
				continue // a folder named twice (a cross-folder rename made durable on one side only)
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
			if err := os.Chmod(p, os.FileMode(perm)|modeBits(perm)); err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
			if err := f.rebuildDir(p, d.ino, where, made, rep); err != nil {
				return err
			}
		case unix.S_IFREG:
			if first, ok := made[d.ino]; ok {
				if err := os.Link(first, p); err != nil {
					return fmt.Errorf("powerloss: %w", err)
				}
				continue
			}
			content := f.files[d.ino]
			var cur []byte
			if src, ok := where[d.ino]; ok {
				cur, _ = os.ReadFile(src)
			}
			if !equal(cur, content) {
				rep.Files++
				if len(rep.Reverted) < maxReported {
					rel, _ := filepath.Rel(f.rebuildRoot, p)
					rep.Reverted = append(rep.Reverted, rel)
				}
				if f.opts.Torn {
					var torn bool
					content, torn = tear(f.rng, content, cur)
					if torn {
						rep.TornFiles++
					}
				}
			}
			if err := os.WriteFile(p, content, 0o600); err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
			if err := unix.Chmod(p, perm); err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
			made[d.ino] = p
		case unix.S_IFLNK:
			if err := os.Symlink(d.link, p); err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
		default:
			if err := unix.Mknod(p, d.mode, 0); err != nil {
				return fmt.Errorf("powerloss: %w", err)
			}
		}
	}
	return nil
}

// modeBits converts the setuid, setgid and sticky bits of a st_mode to
// os.FileMode bits.
func modeBits(perm uint32) os.FileMode {
	var m os.FileMode
	if perm&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if perm&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if perm&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

func sameListing(a, b map[string]dentry) bool {
	if len(a) != len(b) {
		return false
	}
	for name, d := range a {
		if e, ok := b[name]; !ok || e.ino != d.ino {
			return false
		}
	}
	return true
}

func equal(a, b []byte) bool { return string(a) == string(b) }

// tear returns a mix of the durable and the current content of a file:
// the size of either, and each sector from either (beyond a content's
// end its sectors read as zeros). torn says whether the result is
// neither the durable nor the current content.
func tear(rng *rand.Rand, durable, current []byte) (out []byte, torn bool) {
	size := len(durable)
	if rng.IntN(2) == 1 {
		size = len(current)
	}
	out = make([]byte, size)
	for off := 0; off < size; off += SectorSize {
		src := durable
		if rng.IntN(2) == 1 {
			src = current
		}
		end := min(off+SectorSize, size)
		if off < len(src) {
			copy(out[off:end], src[off:min(end, len(src))])
		}
	}
	return out, !equal(out, durable) && !equal(out, current)
}

// node is a loopback node whose namespace changes and fsyncs the FS
// sees.
type node struct {
	*fs.LoopbackNode
	fsys *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
)

// WrapChild makes every node of the tree a *node.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fsys: n.fsys}
}

// rel is the node's path relative to the backing folder.
func (n *node) rel() string { return n.Path(n.Root()) }

// dirIno is the backing inode number of a folder node (0: the root).
func (n *node) dirIno() uint64 {
	if n.EmbeddedInode() == n.Root() {
		return 0
	}
	return n.StableAttr().Ino
}

func (n *node) backingPath(name string) string {
	return filepath.Join(n.fsys.backing, n.rel(), name)
}

// Fsync makes a file's content, or a folder's listing, durable.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	if n.IsDir() {
		return n.fsys.syncDir(ctx, n.dirIno(), n.rel())
	}
	pf, ok := fh.(fs.FilePassthroughFder)
	if !ok {
		return syscall.EIO
	}
	fd, ok := pf.PassthroughFd()
	if !ok {
		return syscall.EBADF
	}
	return n.fsys.syncFile(ctx, fd)
}

// OpendirHandle opens a folder with a handle whose fsync goes through
// the FS.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{FileHandle: fh, n: n}, ff, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	var st unix.Stat_t
	existed := unix.Lstat(n.backingPath(name), &st) == nil
	ch, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno == 0 && !existed {
		f.born(ch.StableAttr().Ino)
	}
	return ch, fh, ff, errno
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		f.born(ch.StableAttr().Ino)
	}
	return ch, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, dev, out)
	if errno == 0 {
		f.born(ch.StableAttr().Ino)
	}
	return ch, errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno == 0 {
		f.born(ch.StableAttr().Ino)
	}
	return ch, errno
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	return n.LoopbackNode.Link(ctx, unwrap(target), name, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinVictim(n.backingPath(name))
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinVictim(n.backingPath(name))
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&unix.RENAME_EXCHANGE == 0 {
		f.pinVictim(np.backingPath(newName))
	}
	return n.LoopbackNode.Rename(ctx, name, np.LoopbackNode, newName, flags)
}

// Tmpfile is refused: a file with no name has no durable state to model,
// and linkat(2) of it cannot be followed (see fs.LoopbackNode.Link).
func (n *node) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

func unwrap(e fs.InodeEmbedder) fs.InodeEmbedder {
	if n, ok := e.(*node); ok {
		return n.LoopbackNode
	}
	return e
}

// dirHandle is a folder handle whose fsync makes the listing durable.
type dirHandle struct {
	fs.FileHandle
	n *node
}

var (
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
	_ fs.FileFsyncer      = (*dirHandle)(nil)
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
)

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.fsys.syncDir(ctx, d.n.dirIno(), d.n.rel())
}

func (d *dirHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return d.Fsyncdir(ctx, flags)
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.FileHandle.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.FileHandle.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if r, ok := d.FileHandle.(fs.FileSeekdirer); ok {
		return r.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}
