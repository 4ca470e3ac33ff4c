package file

// Files the backend removes that held sealed bytes (a replaced record or
// layout-1 file, a layout-1 previous generation, a temp file, a deleted
// record) are overwritten with zeros and fdatasynced after their removal
// is durable, through a descriptor opened before the removal, so that
// their blocks, once freed, no longer hold ciphertext that a key retired
// later would open. This is done through the file system: on a
// copy-on-write file system (btrfs, ZFS, APFS) or a flash translation
// layer, the old blocks may survive on the device (see SECURITY.md). On
// Windows, files are removed without it (see openScrub).
//
// The zeros go in only once the removal (or the rename over the file) is
// durable, so that a crash in between can never leave a name whose file
// is zeros. A lock-free reader that opened the file before its removal
// may meet the zeros: it sees a file without a valid slot, finds it
// unlinked and opens the path again (openStored); a record's slot that
// is not current is zeroed before the current one, so such a reader
// never takes an older generation for the current one.

// victim is a removed file whose bytes are to be overwritten.
type victim struct {
	f     *sysFile
	size  int64
	first int64 // zeros go from first to the end, then from 0 to first
}

// openVictim opens name in d for overwriting after its removal, or
// returns nil if it cannot be (then it is just removed). first is the
// offset to overwrite first: a record's slot that is not current. A file
// larger than any record (nothing the backend wrote: an oversized file
// replaced with backends.Any) is not overwritten, so that its claimed
// size cannot make the backend write without bound.
func openVictim(d *sysDir, name string, first int64) *victim {
	f, size := d.openScrub(name)
	if f == nil {
		return nil
	}
	if size > maxRecordSize {
		f.close()
		return nil
	}
	return &victim{f: f, size: size, first: min(max(first, 0), size)}
}

// scrub overwrites the file with zeros, fdatasyncs it and closes it. A
// nil victim is a no-op. A file that still has a name after its removal
// is closed untouched: another hard link (one a layout-1 writer killed
// between its link and its rename left under a temp name, or one a user
// made) still names it, and its bytes may be the current blob or
// header under that name.
func (v *victim) scrub() error {
	if v == nil {
		return nil
	}
	defer v.f.close()
	if !v.f.unlinked() {
		return nil
	}
	for _, r := range [][2]int64{{v.first, v.size}, {0, v.first}} {
		for off := r[0]; off < r[1]; {
			n := min(r[1]-off, scrubChunk)
			if err := v.f.pwritev(zeros(nil, int(n)), off); err != nil {
				return err
			}
			off += n
		}
	}
	return v.f.datasync()
}

// release closes the file without overwriting it (its removal failed or
// was undone). A nil victim is a no-op.
func (v *victim) release() {
	if v != nil {
		v.f.close()
	}
}

// scrubAll scrubs every victim and returns the first error.
func scrubAll(vs []*victim) error {
	var first error
	for _, v := range vs {
		if err := v.scrub(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// releaseAll releases every victim.
func releaseAll(vs []*victim) {
	for _, v := range vs {
		v.release()
	}
}
