package main

import (
	"io"

	"github.com/sessionvault/sessionvault/internal/secmem"
)

// writeExport writes the plaintext session plain to w, with a final
// newline, and wipes every copy it made or was given once w returns:
// plain itself and, when a newline had to be added, the longer buffer
// that was written. (Appending to plain could move it to a new array that
// nothing would wipe.) What w does with the bytes is w's business: on a
// terminal or a pipe they leave the process.
func writeExport(w io.Writer, plain []byte) error {
	defer secmem.Wipe(plain)
	out := plain
	if len(plain) == 0 || plain[len(plain)-1] != '\n' {
		out = make([]byte, len(plain)+1)
		copy(out, plain)
		out[len(plain)] = '\n'
		defer secmem.Wipe(out)
	}
	_, err := w.Write(out)
	return err
}
