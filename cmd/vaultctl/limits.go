package main

import "time"

// Limits and defaults of the command, in one place.
const (
	// maxPassphraseLen caps a passphrase read from a file, a file
	// descriptor, the environment or the terminal. Nobody types more;
	// a longer input is almost certainly the wrong file (a key, a
	// binary) and must not be fed to argon2id.
	maxPassphraseLen = 1024

	// maxImportSize caps a session file read by import. An axiomtrade-rs
	// session is 2-4 KiB; 1 MiB leaves room for many additional cookies
	// and Turnkey API keys while refusing a log file or a disk image
	// given by mistake before it is read into memory.
	maxImportSize = 1 << 20

	// keychainTimeout bounds each OS keychain call: a Secret Service
	// that shows an unlock prompt nobody answers must not hang a script.
	keychainTimeout = 30 * time.Second

	// progressAfter is how long a run must last before progress lines
	// appear on a stderr that is not a terminal: short runs stay quiet.
	progressAfter = 2 * time.Second

	// progressEvery is the interval between progress lines on a stderr
	// that is not a terminal, and between redraws of the bar on one
	// that is (progressRedraw).
	progressEvery  = 2 * time.Second
	progressRedraw = 100 * time.Millisecond

	// progressMin is the number of items below which no progress is shown.
	progressMin = 50

	// demoTimeout bounds the whole demo: it talks to a server of its own
	// on loopback, so anything slower is a bug, not a slow network.
	demoTimeout = 30 * time.Second

	// migrateWorkers is how many sessions migrate copies (and then
	// verifies) at once: each copy is one atomic Put, and a few in flight
	// overlap their fsyncs or Redis round trips, as RotateKey's six
	// writers do; more gain little on one disk and load a shared server.
	migrateWorkers = 6

	// minPassphraseLen and minDistinctChars are the floor under which
	// init warns that a passphrase is weak (it still accepts it: the
	// caller may know better, and a refusal would break scripts). They
	// catch the obvious (short, repetitive); they are no strength
	// estimate.
	minPassphraseLen = 12
	minDistinctChars = 6
)

// maxConfirmLine bounds the answer read at a [y/N] prompt: it is one
// word, and a terminal that sends megabytes must not make vaultctl hold
// them.
const maxConfirmLine = 64
