package backends

// Limits shared by every backend. Each backend may accept less (a keychain
// entry holds a few KiB at most) and says so in its documentation; none
// accepts more.
const (
	// MaxBlobSize is the largest blob a Backend must store. The vault caps
	// a session's plaintext at 1 MiB; a sealed blob adds a fixed envelope
	// (format header, generation, nonce, tag: well under a hundred bytes)
	// and the vault header holds a handful of key slots (a few KiB). The
	// extra 64 KiB leaves room for both with a wide margin, while still
	// bounding what a reader allocates for a hostile, oversized file.
	MaxBlobSize = 1<<20 + 64<<10

	// MaxNameLen is the longest valid name, in bytes. The file backend
	// stores a session as ".NAME.sealed.tmp-" plus 16 hex digits while
	// writing it, and that must fit in NAME_MAX (255 bytes) on every
	// filesystem we support; 128 leaves that margin and is ample for a
	// human-chosen session name.
	MaxNameLen = 128
)
