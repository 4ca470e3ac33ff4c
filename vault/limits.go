package vault

import (
	"time"

	"github.com/sessionvault/sessionvault/backends"
)

// Sizes and limits of format v1 and of this implementation, in one place.
// Each is checked before the bytes it bounds are read, allocated or used.
const (
	// MaxPlaintextSize is the largest session a vault seals: 1 MiB. An
	// axiomtrade-rs session is a few KiB; the cap bounds what a reader
	// allocates for a hostile blob, with a wide margin for cookies and
	// metadata.
	MaxPlaintextSize = 1 << 20

	// MaxSealedSize is the largest sealed session blob: a
	// MaxPlaintextSize plaintext sealed in chunks (envelope version 3:
	// its header and one tag per chunk, 1,048,870 bytes). It is below
	// backends.MaxBlobSize, so every backend stores it. Envelopes of
	// version 1 and 2 are held to maxSealedV2Size.
	MaxSealedSize = envelopeV3HeaderSize + MaxPlaintextSize + maxChunks*tagSize

	// maxSealedV2Size is the largest envelope of version 1 or 2: the
	// version 2 header, a MaxPlaintextSize plaintext and the tag
	// (1,048,638 bytes), the cap readers have always applied to them.
	maxSealedV2Size = envelopeV2HeaderSize + MaxPlaintextSize + tagSize

	// chunkedThreshold: a plaintext longer than this (256 KiB) is sealed
	// in chunks (envelope version 3, chunked.go), which both seal and
	// open on up to GOMAXPROCS cores at once; a shorter one keeps the
	// single-message envelope version 2, byte for byte as before, so
	// that releases which predate version 3 keep reading every session
	// of the usual size (a few KiB). Above it one AEAD message on one
	// core costs more than reading the same bytes from the page cache
	// (docs/BENCHMARKS.md section 12), so splitting the work pays for the
	// goroutines it starts; below it a session is at most 4 chunks and
	// the single message is simpler.
	// It is a writer's choice, not a format rule: readers open a
	// version 3 envelope of any size.
	chunkedThreshold = 256 << 10

	// maxChunks bounds the chunks of a version 3 envelope: a
	// MaxPlaintextSize plaintext in chunkSize pieces, 16. It follows
	// from MaxSealedSize, which a reader checks first, so a hostile blob
	// never makes a reader start more work than that.
	maxChunks = (MaxPlaintextSize + chunkSize - 1) / chunkSize

	// maxGenerations bounds the key generations in a header: 1 normally,
	// 2 while a rotation runs (RotateKey never adds a third). 16 leaves
	// room for future writers of v1 and bounds a slot's wrapped keys to
	// 512 bytes.
	maxGenerations = 16

	// maxSlots bounds the key slots in a header: one or two in practice
	// (a passphrase and a keychain key), 8 like LUKS1.
	maxSlots = 8

	// maxPassphraseSlots bounds the passphrase slots in a header. Open
	// may run argon2id once per passphrase slot (nothing tells which one
	// a passphrase fits), so this bounds what a hostile header costs: 4
	// runs at the policy's ceiling.
	maxPassphraseSlots = 4

	// MaxPassphraseSize bounds a passphrase read from a systemd
	// credential (WithPassphraseCredential): 1 KiB, as vaultctl bounds a
	// passphrase file. A longer file is not a passphrase.
	MaxPassphraseSize = 1024

	// maxTPMSlots bounds the TPM slots in a header (version 2). Open
	// may ask the TPM once per TPM slot, each a few TPM commands (tens
	// of milliseconds on a real TPM), so this bounds what a hostile
	// header costs; one slot per TPM is the normal case, two allow a
	// second machine or a replacement TPM.
	maxTPMSlots = 2

	// MaxSealedKeySize bounds the sealed key of a TPM slot: 1 KiB. A
	// TPM2 sealed data object (package tpm: its public and private
	// areas and a PCR selection) is about 250 bytes.
	MaxSealedKeySize = 1 << 10

	// maxHeaderSize bounds a header blob: 8 KiB, above the largest header
	// v1 allows (maxGenerations generations wrapped in maxPassphraseSlots
	// passphrase slots and 4 keychain slots: 4,936 bytes) and the largest
	// v2 allows (the same with 2 of the keychain slots TPM slots holding
	// MaxSealedKeySize bytes each: 6,988 bytes). A test checks the
	// arithmetic.
	maxHeaderSize = 8 << 10

	// MaxKeychainServiceSize bounds the key store service name a keychain
	// slot records (header version 3): 64 bytes, as package keychain
	// bounds its service names (they become part of a Windows target
	// name and a macOS command line). The largest version 3 header (the
	// largest v2 one with its 2 keychain slots naming 64-byte services)
	// is 7,118 bytes, under maxHeaderSize; a test checks the arithmetic.
	MaxKeychainServiceSize = 64

	// keyStoreTimeout bounds a key store call (an OS keychain may show a
	// prompt that nobody answers) when the caller's context has no
	// deadline of its own.
	keyStoreTimeout = 30 * time.Second

	// openPurgeWait bounds how long Open waits for the header lock to
	// finish a purge a crash interrupted (retire.go) before it purges
	// without it. A free lock is taken in microseconds; a held one is
	// a writer that purges when done, or a lease a killed process left
	// (Redis keeps it for its TTL), which Open must not wait out.
	openPurgeWait = 200 * time.Millisecond

	// headerRetries bounds how often a header update is retried after a
	// version conflict with a writer that does not take the lock.
	headerRetries = 5

	// rotatePasses bounds the re-seal passes of RotateKey: a session that
	// another writer keeps re-sealing under an old generation (a writer
	// that bypasses the lock) stops the rotation with an error rather
	// than looping for ever.
	rotatePasses = 3

	// putRetries bounds re-reads of one session after a version conflict
	// during RotateKey.
	putRetries = 5

	// resealWorkers is how many sessions RotateKey re-seals (or checks)
	// at once. A durable write spends almost all its time waiting for
	// fsync, and the file system commits several concurrent fsyncs in
	// one journal transaction (ext4, XFS and APFS batch them), so a few
	// writers in flight cut a rotation's wall time well below that of
	// serial writes; more than a handful gain little on one disk and
	// only add load on a shared server (Redis). Measured on these
	// machines (2 cores, ext4), see BenchmarkRotateKey1000 in
	// cmd/vaultctl.
	resealWorkers = 6
)

// Sizes fixed by format v1 (docs/FORMAT.md).
const (
	keySize     = 32 // data keys, key-encryption keys, subkeys
	idSize      = 16 // vault id, slot id
	saltSize    = 16 // passphrase slot salt (kdf.SaltSize)
	checkSize   = 16 // slot check value
	nonceSize   = 24 // XChaCha20-Poly1305
	tagSize     = 16 // Poly1305
	macSize     = 32 // HMAC-SHA256
	sumSize     = 32 // SHA-256 checksum
	magicSize   = 8
	versionSize = 2
	genSize     = 4 // a generation number

	// envelopeHeaderSize: magic, version, generation, nonce (envelope
	// version 1).
	envelopeHeaderSize = magicSize + versionSize + genSize + nonceSize

	// envelopeV2HeaderSize: magic, version, generation, rollback
	// counter, nonce (envelope version 2, rollback.go).
	envelopeV2HeaderSize = envelopeHeaderSize + counterSize
	counterSize          = 8

	// envelopeV3HeaderSize: magic, version, generation, rollback
	// counter, nonce prefix (envelope version 3, chunked.go).
	envelopeV3HeaderSize = magicSize + versionSize + genSize + counterSize + noncePrefixSize
	noncePrefixSize      = 16

	// chunkSize is the plaintext of every chunk of a version 3 envelope
	// but the last (which holds 1 to chunkSize bytes): 64 KiB, as in
	// age's payload. Fixed by the version: there is no size field.
	chunkSize = 64 << 10

	// headerFixedSize: magic, version, vault id.
	headerFixedSize = magicSize + versionSize + idSize

	// passphraseParamsSize: time, memory, threads, salt.
	passphraseParamsSize = 4 + 4 + 1 + saltSize

	// minHeaderSize is the shortest header that can parse: fixed part,
	// generation count and one generation, slot count and one keychain
	// slot, MAC and checksum.
	minHeaderSize = headerFixedSize + 1 + genSize + 1 + (1 + idSize + checkSize + nonceSize + keySize + tagSize) + macSize + sumSize
)

// A session name's length is one byte of the session AAD: this stops
// compiling if backends.MaxNameLen ever exceeds 255.
const _ = uint8(backends.MaxNameLen)

// maxFreshSize bounds the freshness file (WithFreshnessFile) a reader
// accepts: one entry per session name, far more sessions than a vault
// holds; a larger file is refused as corrupt after reading one byte past
// the limit.
const maxFreshSize = 16 << 20
