package memscan

import "bytes"

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }
