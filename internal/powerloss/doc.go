// Package powerloss is a FUSE file system that forgets, on command, what
// a power cut would lose, and a harness that cuts the power under a child
// process working on it. It exists because a crash test that kills a
// process with SIGKILL cannot see a missing fsync: the kernel's page
// cache survives the kill. It plays the part SQLite's crash-simulating
// VFS and Jepsen's LazyFS play for those projects.
//
// # The model
//
// The file system (FS) is a loopback mount over a backing folder. The
// backing folder holds the volatile view: what a running machine shows,
// page cache included. FS keeps the durable state apart, in memory: for
// every file inode its durable content, and for every folder inode its
// durable listing (name to inode). The state at mount time is durable.
// Then:
//
//   - fsync(2) or fdatasync(2) of a file makes its current content and
//     size durable (fdatasync is treated as fsync: only data and size
//     are modeled);
//   - fsync(2) of a folder makes its current listing durable: the
//     creates, renames, links, unlinks, mkdirs and rmdirs done in it
//     since its last fsync;
//   - nothing else makes anything durable: not close(2), not an fsync of
//     another file, not time passing.
//
// Cut cuts the power: it unmounts, rebuilds the backing folder from the
// durable state (the durable listings from the root down, each file with
// its durable content, hard links kept), and mounts it again. A file
// created since its last fsync has no durable content: it comes back
// empty if its folder's fsync made its name durable. With
// Options.Torn, every file whose content differs from its durable
// content is torn instead: its size is the durable or the current one,
// and each 512-byte sector is the durable or the current one, at
// random (sectors past a content's end read as zeros). A 512-byte
// sector is written whole or not at all; nothing larger is.
//
// FreezeAtSync arms a cut at an exact fsync: the N-th fsync from then
// on, and every one after it, never returns and takes no effect, as if
// the power failed while the disk flushed. Syncs counts fsync calls so
// that a harness can pick N at random.
//
// # The reference: ext4, data=ordered
//
// ext4 with its default options (data=ordered, auto_da_alloc, a journal
// commit every 5 seconds) is the reference, and every state Cut leaves
// is one POSIX allows after a power cut: fsync makes a file's data
// durable, a folder's fsync makes its entries durable, and nothing else
// is promised. ext4 usually keeps more than the model does: its journal
// commits all metadata in order, so one fsync makes every earlier
// namespace change durable, in every folder; a commit happens every 5
// seconds anyway; data=ordered writes a file's data before the metadata
// that exposes it; and auto_da_alloc flushes a file renamed over
// another. The model keeps none of that kindness, so that code correct
// under it is correct on ext4 and on file systems that are less kind
// (XFS, btrfs, ext4 with data=writeback, a disk that reorders writes).
//
// # What it does not model
//
//   - Partial survival of un-synced namespace changes: a folder's
//     changes since its last fsync are lost all together, never a
//     prefix of them (ext4's journal may commit a prefix).
//   - Un-synced data that survives whole or in part without Torn: without
//     Torn a file returns to its durable content exactly; with Torn a
//     mix of the durable and the last written content is chosen, never
//     an intermediate version written and overwritten before the cut.
//   - Metadata other than size and names: modes, owners and times are
//     kept as they are at the cut. Extended attributes are not modeled.
//   - Cross-folder renames made durable on one side only may leave a
//     file under both names (a hard link); a folder named twice is
//     rebuilt once.
//   - O_TMPFILE is refused (EOPNOTSUPP); mmap writes are not seen
//     before msync; locks (flock, fcntl) are the kernel's own, kept
//     across processes on the mount and dropped by a cut, as a reboot
//     drops them.
//   - Read errors, bit rot, misdirected writes, a disk that lies about
//     fsync: out of scope.
//
// # The harness
//
// Mount mounts a file system for a test (skipping where FUSE is not
// available, failing under CI). Run cuts the power under a Workload: a
// child process (package reexec) works on the mount and reports each
// durable return on its standard output ("ack N"); each round the
// parent cuts at a random fsync count or a random time, kills the child
// with SIGKILL, calls Cut, and runs the workload's Checks on the
// remounted file system. Checks are pluggable: a workload's own (the
// vault opens, every acknowledged save is there, nothing is torn) and
// others' (a retired-credential scan).
//
// The file system needs Linux, root and /dev/fuse (no fusermount: it
// mounts directly).
package powerloss
