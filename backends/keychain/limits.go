package keychain

import (
	"encoding/base64"
	"strings"

	"github.com/sessionvault/sessionvault/backends/secretstore"
)

// Limits of the platform keychains behind github.com/zalando/go-keyring,
// each with its source. Values are stored base64-encoded (see Keychain), so
// a limit on the stored string is a limit of 3/4 of it on our bytes.
const (
	// DefaultTimeout bounds every keychain call whose context has no
	// earlier deadline; secretstore.DefaultTimeout gives the reason.
	DefaultTimeout = secretstore.DefaultTimeout

	// windowsMaxCredentialBlob is CRED_MAX_CREDENTIAL_BLOB_SIZE (5*512
	// bytes), the most a Windows generic credential holds; go-keyring
	// refuses longer passwords with ErrSetDataTooBig.
	windowsMaxCredentialBlob = 2560

	// darwinMaxCommandLine is the longest command go-keyring sends to
	// `security -i` on macOS ("add-generic-password -U -s SERVICE -a
	// ACCOUNT -w go-keyring-base64:BASE64\n"): security reads its
	// interactive input in 4096-byte lines, and go-keyring refuses longer
	// commands with ErrSetDataTooBig.
	darwinMaxCommandLine = 4096

	// darwinPasswordPrefix is what go-keyring puts before the base64 of
	// the password it hands to security on macOS.
	darwinPasswordPrefix = "go-keyring-base64:"

	// secretServiceMaxValue caps a value on the Secret Service (Linux,
	// BSD), which has no limit of its own short of the 128 MiB D-Bus
	// message: the vault header and a KEK need a few KiB at most,
	// go-keyring's documentation warns that performance suffers past
	// 100 KiB, and it bounds what we decode from a hostile entry.
	secretServiceMaxValue = 64 << 10

	// maxServiceLen bounds the service name, which is part of the Windows
	// target name and the macOS command line.
	maxServiceLen = 64
)

// maxValueLen returns the largest value (our bytes, before base64) that
// go-keyring can store for service and account on goos.
func maxValueLen(goos, service, account string) int {
	switch goos {
	case "windows":
		return fromBase64Budget(windowsMaxCredentialBlob)
	case "darwin":
		fixed := len("add-generic-password -U -s ") + shellQuotedLen(service) +
			len(" -a ") + shellQuotedLen(account) + len(" -w ") + len(darwinPasswordPrefix) + len("\n")
		// go-keyring base64-encodes our (already base64) string again.
		return fromBase64Budget(fromBase64Budget(darwinMaxCommandLine - fixed))
	}
	return secretServiceMaxValue
}

// fromBase64Budget returns the largest n whose standard base64 encoding
// fits in budget bytes.
func fromBase64Budget(budget int) int {
	if budget <= 0 {
		return 0
	}
	return budget / 4 * 3
}

// shellQuotedLen is an upper bound on the length of go-keyring's shell
// quoting of s: s itself when it needs no quoting, else s in single quotes
// with each ' turned into '"'"'.
func shellQuotedLen(s string) int {
	safe := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_@%+=:,./-", c) >= 0) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return len(s)
	}
	return len(s) + 2 + 4*strings.Count(s, "'")
}

// encodedLen is the length of the stored string for n bytes.
func encodedLen(n int) int { return base64.StdEncoding.EncodedLen(n) }
