package keyring

import (
	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// Limits, each with its reason. They bound the value this package hands to
// 99designs/keyring for one entry (secretstore framing included).
const (
	// DefaultTimeout bounds every call (and Open) whose context has no
	// earlier deadline; secretstore.DefaultTimeout gives the reason.
	DefaultTimeout = secretstore.DefaultTimeout

	// winCredMaxValue is CRED_MAX_CREDENTIAL_BLOB_SIZE (5*512 bytes), the
	// most a Windows generic credential holds; 99designs stores the value
	// as the credential blob unchanged.
	winCredMaxValue = 2560

	// keyCtlMaxValue caps a kernel-keyring entry. The kernel accepts up to
	// 32767 bytes in a "user" key, but a non-root user's whole key quota is
	// 20000 bytes by default (kernel.keys.maxbytes), shared by every key
	// of that user; 8 KiB leaves room for the vault header, the index and
	// the KEKs within it.
	keyCtlMaxValue = 8 << 10

	// defaultMaxValue caps an entry on the other backends (Secret
	// Service, macOS keychain, KWallet, pass, file), which have no small
	// limit of their own: the vault header and a KEK need a few KiB, these
	// stores are not made for bulk data, and it bounds what a hostile
	// entry makes us keep.
	defaultMaxValue = 64 << 10
)

// maxValueLen returns the largest value the backend stores in one entry.
func maxValueLen(b BackendType) int {
	switch b {
	case WinCredBackend:
		return winCredMaxValue
	case KeyCtlBackend:
		return keyCtlMaxValue
	}
	return defaultMaxValue
}
