package secretstore

import "time"

// Limits and defaults of the package, each with its reason.
const (
	// DefaultTimeout bounds every call when the caller's context has no
	// earlier deadline. A keychain answers in milliseconds (a Secret
	// Service round trip here is 1-3 ms, the kernel keyring microseconds)
	// unless it shows a prompt; ten seconds is long enough for a person
	// to answer an unlock prompt that is already on screen, and short
	// enough that a prompt nobody sees does not hang a bot.
	DefaultTimeout = 10 * time.Second

	// MaxInFlight is how many keychain calls of one Keychain may run at
	// once, counting calls whose caller gave up at its deadline but whose
	// goroutine still waits for the keychain. A keychain that never
	// answers therefore holds at most this many goroutines; further calls
	// fail at their deadline instead of piling up.
	MaxInFlight = 4

	// MaxKeyLen is the largest secret a KeyStore entry holds. Key
	// encryption keys are 32 bytes; 512 leaves room for any other key or
	// wrapped key and keeps an entry within every platform's limit.
	MaxKeyLen = 512

	// MaxNamespaceLen is the longest Backend namespace, in bytes. An
	// account is "blobs/NAMESPACE/NAME": with a 128-byte name this stays
	// under 300 bytes, well inside the Windows target-name limit (32767
	// UTF-16 units) and the 4 KiB macOS command line.
	MaxNamespaceLen = 128

	// MaxAccountPartLen is the longest vault id or key id in a KeyStore
	// account "<vault id>/<key id>", for the same reason.
	MaxAccountPartLen = 128

	// recordHeaderLen is the framing of a blob record: 4 magic bytes and a
	// 16-byte random version.
	recordHeaderLen = magicLen + versionLen

	// magicLen is the length of the magic that starts every entry.
	magicLen = 4

	// versionLen is the length of a blob version in bytes (hex-encoded in
	// backends.Version). 128 random bits make two writers' versions
	// collide with negligible probability, so a version never repeats
	// (no ABA), even across processes.
	versionLen = 16
)
