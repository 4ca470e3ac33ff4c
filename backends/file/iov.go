package file

// zeroBlock is written (as often as needed, by reference) to clear the
// rest of a slot's old blob.
var zeroBlock [blockSize]byte

// zeros appends to parts n zero bytes, as references to zeroBlock.
func zeros(parts [][]byte, n int) [][]byte {
	for n > 0 {
		k := min(n, blockSize)
		parts = append(parts, zeroBlock[:k])
		n -= k
	}
	return parts
}

// advance drops the first n bytes of parts.
func advance(parts [][]byte, n int) [][]byte {
	for n > 0 && len(parts) > 0 {
		if n < len(parts[0]) {
			parts[0] = parts[0][n:]
			return parts
		}
		n -= len(parts[0])
		parts = parts[1:]
	}
	for len(parts) > 0 && len(parts[0]) == 0 {
		parts = parts[1:]
	}
	return parts
}
