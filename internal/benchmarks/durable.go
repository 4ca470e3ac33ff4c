package benchmarks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// RawDir is the physical baseline: the fewest system calls that store bytes
// under a name atomically and durably on a POSIX filesystem. It keeps the
// folder open, so a write costs exactly
//
//	open(O_CREAT|O_EXCL, 0600) + write + fsync + close + rename + fsync(folder)
//
// and nothing else (no permission checks, no lock, no previous generation).
// Anything a real backend does on top shows up as its ratio to this.
//
// A RawDir is not safe for concurrent use.
type RawDir struct {
	path string
	dir  *os.File
	seq  uint64
}

// OpenRawDir opens path, which must be an existing folder.
func OpenRawDir(path string) (*RawDir, error) {
	d, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := d.Stat()
	if err != nil {
		d.Close()
		return nil, err
	}
	if !fi.IsDir() {
		d.Close()
		return nil, fmt.Errorf("benchmarks: %s is not a folder", path)
	}
	return &RawDir{path: path, dir: d}, nil
}

// Path returns the folder's path.
func (d *RawDir) Path() string { return d.path }

// WriteDurable replaces name with data: a temp file in the same folder
// (O_EXCL, mode 0600), write, fsync, close, rename over name, fsync the
// folder. On error the temp file is removed and name is unchanged.
func (d *RawDir) WriteDurable(name string, data []byte) (err error) {
	d.seq++
	tmp := filepath.Join(d.path, "."+name+".tmp-"+strconv.FormatUint(d.seq, 16))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(d.path, name)); err != nil {
		return err
	}
	return d.dir.Sync()
}

// ReadFile returns the content of name (a plain os.ReadFile).
func (d *RawDir) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.path, name))
}

// Close closes the folder.
func (d *RawDir) Close() error {
	if d.dir == nil {
		return errors.New("benchmarks: RawDir already closed")
	}
	err := d.dir.Close()
	d.dir = nil
	return err
}

// WritePlain writes data to path the way axiomtrade-rs saves a session
// (std::fs::write): truncate in place, no fsync, no rename, default mode. It
// is neither atomic (a crash or a concurrent reader can see a torn or empty
// file) nor durable (the bytes may still be only in the page cache). It is
// timed for comparison only.
func WritePlain(path string, data []byte) error {
	return os.WriteFile(path, data, 0o644)
}

// InPlaceFile is the physical limit of a durable update: bytes written over
// blocks a file already has (written, not merely allocated: an unwritten
// extent would make the first overwrite of each block commit metadata),
// then one fdatasync (F_FULLFSYNC on macOS, FlushFileBuffers on Windows,
// through os.File.Sync there). It alternates between two regions, as the
// file backend's two slots, so that no write rewrites the block the last
// one wrote. Nothing makes it atomic: a crash can leave a region torn.
//
// An InPlaceFile is not safe for concurrent use.
type InPlaceFile struct {
	f      *os.File
	region int64
	next   int64
}

// CreateInPlaceFile creates path holding two regions of at least size
// bytes each (rounded up to 4 KiB), written with zeros and synced.
func CreateInPlaceFile(path string, size int) (*InPlaceFile, error) {
	region := (int64(size) + 4095) / 4096 * 4096
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, 2*region)); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return &InPlaceFile{f: f, region: region}, nil
}

// WriteDurable writes data at the start of the next region and syncs the
// file's data.
func (p *InPlaceFile) WriteDurable(data []byte) error {
	if int64(len(data)) > p.region {
		return fmt.Errorf("benchmarks: %d bytes over a region of %d", len(data), p.region)
	}
	if _, err := p.f.WriteAt(data, p.next*p.region); err != nil {
		return err
	}
	p.next ^= 1
	return dataSync(p.f)
}

// Close closes the file.
func (p *InPlaceFile) Close() error { return p.f.Close() }
