package main

import (
	"github.com/sessionvault/sessionvault/internal/secmem"

	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// exportFlags are export's output flags.
type exportFlags struct {
	out   string // -o FILE
	force bool
}

// writeExport writes the plaintext of an export: to -o FILE, created
// 0600 and refused if it exists (unless --force), else to standard
// output, refused when that is a terminal unless --force (a terminal
// keeps the tokens in its scrollback, and a shoulder sees them).
func (a *app) writeExport(ef *exportFlags, plain []byte) error {
	defer secmem.Wipe(plain)
	if ef.out == "" {
		if a.stdoutTTY && !ef.force {
			return usagef("export prints every token in clear and standard output is a terminal: use -o FILE (written 0600), pipe it to the program that needs it, or --force")
		}
		return writeExport(a.stdout, plain)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if ef.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	if fi, err := os.Lstat(ef.out); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("export: -o %s is a symlink: refused", ef.out)
	}
	f, err := os.OpenFile(ef.out, flags|oNoFollow, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return withHint(fmt.Errorf("export: %s exists", ef.out), "nothing was written; use --force to replace it")
		}
		return fmt.Errorf("export: %w", err)
	}
	// An existing file replaced with --force keeps its mode: make it
	// private before the plaintext goes in.
	if err := f.Chmod(0o600); err != nil && !isWindows() {
		f.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := writeExport(f, plain); err != nil {
		f.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if !a.json {
		fmt.Fprintf(a.stderr, "vaultctl: wrote %s (mode 0600)\n", filepath.Clean(ef.out))
	}
	return nil
}

var _ io.Writer = (*os.File)(nil)
