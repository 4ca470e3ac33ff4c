// Command vaultctl creates and operates sessionvault vaults: it seals
// axiomtrade-rs session files, shows and exports them, rotates keys and
// changes passphrases without ever losing a session, verifies and repairs
// vaults, and runs an end-to-end demo.
//
// Usage:
//
//	vaultctl [--dir DIR] [--passphrase-file FILE | --passphrase-fd N] [--keychain] [--tpm] [--json] COMMAND [ARGS]
//
// Run "vaultctl help" for the commands and "vaultctl COMMAND --help" for
// one of them. Exit codes: 0 ok, 1 other error, 2 usage, 3 not found,
// 4 wrong passphrase or key, 5 corrupt or tampered, 6 keychain or TPM
// unavailable (or the keychain locked), 7 unsafe permissions or a symlink.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/keychain"
	"github.com/sessionvault/sessionvault/kdf"
)

func main() {
	os.Exit(Main())
}

// Main runs vaultctl on the process's arguments and standard streams and
// returns the exit code. The tests register it as a testscript command.
func Main() int {
	// An interrupt cancels the context: rotate-key stops between two
	// atomic writes (a rerun finishes the job) and a prompt gives the
	// terminal its echo back before the process exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{
		stdin:        os.Stdin,
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		stderrTTY:    term.IsTerminal(int(os.Stderr.Fd())),
		stdoutTTY:    term.IsTerminal(int(os.Stdout.Fd())),
		getenv:       os.Getenv,
		openTerminal: openTerminal,
	}
	return a.run(ctx, os.Args[1:])
}

// app is one run of vaultctl: its streams, its environment and the
// global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool
	stdoutTTY      bool // export refuses to print plaintext to a terminal
	getenv         func(string) string
	openTerminal   func() (terminal, error)

	// Global flags.
	dir      string
	keychain bool
	tpm      bool
	// keychainService is --keychain-service; recordedService the
	// service the vault's keychain slot records (header version 3),
	// used when the flag is not given.
	keychainService string
	recordedService string
	tpmDev          string
	json            bool
	backend         string
	redisURL        string
	redisPrefix     string
	pass            passphraseSource
	version         bool
	// allowKDFCost is --allow-kdf-cost; kdfPolicy the policy it makes
	// (kdfcost.go).
	allowKDFCost string
	kdfPolicy    kdf.Policy
	freshness    string // --freshness FILE: the vault's rollback record
	generate     bool   // init --generate-passphrase
	created      bool   // init made the vault

	cmd     *command // the command being run, for messages
	emitted bool     // a JSON document was written to stdout
	// backends opened by the command, closed when it returns.
	backends []backends.Backend
}

// command is one subcommand.
type command struct {
	name     string
	args     string // synopsis of the positional arguments
	summary  string // one line for the command list
	help     string // paragraphs for "vaultctl CMD --help"
	min, max int    // number of positional arguments (max -1: any)
	// setup registers the command's flags and returns the function that
	// runs it with the positional arguments.
	setup func(fs *flag.FlagSet) func(ctx context.Context, a *app, args []string) error
}

// commands lists the subcommands in the order "vaultctl help" shows them.
// It is filled in init to break the initialization cycle through
// cmdHelp, which lists the commands.
var commands []*command

func init() {
	commands = []*command{
		cmdInit, cmdImport, cmdExport, cmdShow, cmdStatus, cmdRotateKey, cmdPasswd,
		cmdVerify, cmdRm, cmdGC, cmdMigrate, cmdMigrateLayout, cmdDemo, cmdCompletion, cmdVersion, cmdHelp,
	}
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	if name == cmdNames.name {
		return cmdNames
	}
	return nil
}

// cmdNames lists session names for shell completion. It is not in the
// command list: it reads the storage's blob names (file names on disk,
// not secret) without unlocking, so that completion never prompts.
var cmdNames = &command{
	name:    "__names",
	summary: "list session names for shell completion",
	help:    "Lists session names, without unlocking the vault. Used by shell completion.",
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(ctx context.Context, a *app, _ []string) error {
			b, err := a.openBackend(ctx, false)
			if err != nil {
				return err
			}
			names, err := b.List(ctx)
			if err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintln(a.stdout, n)
			}
			return nil
		}
	},
}

// globalFlags registers the flags that go before the command.
func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.dir, "dir", "", "vault folder `DIR` (default $VAULTCTL_DIR, else the user's data folder; not used with --backend redis)")
	fs.StringVar(&a.pass.file, "passphrase-file", "", "read the passphrase from `FILE` (one trailing newline stripped)")
	fs.IntVar(&a.pass.fd, "passphrase-fd", -1, "read the passphrase from file descriptor `N`")
	fs.StringVar(&a.pass.cred, "passphrase-credential", "", "read the passphrase from the systemd credential `NAME` ($CREDENTIALS_DIRECTORY/NAME; see docs/systemd.md)")
	fs.BoolVar(&a.keychain, "keychain", false, "unlock with the key in the OS keychain (at init: make a keychain slot, as --keychain-slot)")
	fs.StringVar(&a.keychainService, "keychain-service", "", "OS keychain service `NAME` of a new keychain slot (recorded in the vault), or of the key to unlock with when the vault records none (default: the one the vault records, else "+keychain.Service+")")
	fs.BoolVar(&a.tpm, "tpm", false, "unlock with the key sealed to the TPM (at init: make a TPM slot, as --tpm-slot)")
	fs.StringVar(&a.tpmDev, "tpm-device", "", "TPM `DEVICE`, or the Unix socket of a software TPM (default $VAULTCTL_TPM_DEVICE, else /dev/tpmrm0)")
	fs.BoolVar(&a.json, "json", false, "print the output as one JSON document")
	fs.StringVar(&a.backend, "backend", "file", "storage: `file` (the vault folder) or redis")
	fs.StringVar(&a.redisURL, "redis-url", "", "Redis `URL` for --backend redis, without a password (default $VAULTCTL_REDIS_URL, which may carry one); add ?replica_ack=1 when the server has replicas, so that writes wait for one")
	fs.BoolVar(&a.version, "version", false, "print the version of vaultctl and exit")
	fs.StringVar(&a.freshness, "freshness", "", "keep the vault's rollback record in `FILE`, outside the vault (default $VAULTCTL_FRESHNESS): an older session or header put back is then refused after a restart too")
	fs.StringVar(&a.redisPrefix, "redis-prefix", "", "Redis key `PREFIX` of the vault (default $VAULTCTL_REDIS_PREFIX, else sessionvault)")
	fs.StringVar(&a.allowKDFCost, "allow-kdf-cost", "", kdfCostUsage)
}

// run parses the command line, runs the command and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	a.pass.getenv = a.getenv
	a.pass.openTerminal = a.openTerminal
	a.pass.warn = a.stderr
	fs := flag.NewFlagSet("vaultctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.mainUsage(a.stdout)
			return exitOK
		}
		return a.fail(usagef("%v: run 'vaultctl help'", err))
	}
	rest := fs.Args()
	if a.version {
		return a.fail(a.printVersion())
	}
	if len(rest) == 0 {
		a.mainUsage(a.stderr)
		return exitUsage
	}
	c := lookupCommand(rest[0])
	if c == nil {
		return a.fail(unknownCommand(rest[0]))
	}
	a.cmd = c

	cfs := flag.NewFlagSet("vaultctl "+c.name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	runFn := c.setup(cfs)
	pos, err := parseInterspersed(withGlobals(cfs, fs), rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(a.stdout, c, cfs)
			return exitOK
		}
		return a.fail(usagef("%s: %s: run 'vaultctl %s --help'", c.name, err.Error(), c.name))
	}
	if err := a.checkGlobals(); err != nil {
		return a.fail(err)
	}
	if len(pos) < c.min || (c.max >= 0 && len(pos) > c.max) {
		return a.fail(usagef("usage: vaultctl %s: run 'vaultctl %s --help'", strings.TrimSpace(c.name+" "+c.args), c.name))
	}
	err = runFn(ctx, a, pos)
	for _, b := range a.backends {
		b.Close()
	}
	a.backends = nil
	return a.fail(err)
}

// checkGlobals validates the global flags that every command shares.
func (a *app) checkGlobals() error {
	if a.pass.file != "" && a.pass.fd >= 0 {
		return usagef("--passphrase-file and --passphrase-fd both given: use one")
	}
	if err := a.resolveKDFCost(); err != nil {
		return err
	}
	if a.freshness == "" {
		a.freshness = a.getenv(freshnessEnv)
	}
	if a.pass.cred != "" && (a.pass.file != "" || a.pass.fd >= 0) {
		return usagef("--passphrase-credential and --passphrase-file or --passphrase-fd both given: use one")
	}
	switch a.backend {
	case "file":
	case "redis":
		// Arguments are readable by every local user (ps, /proc/PID/cmdline):
		// a URL that carries a password goes in the environment instead.
		if u, err := url.Parse(a.redisURL); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return usagef("--redis-url carries a password, which other users can read in the process list: put the URL in $%s instead", redisURLEnv)
			}
		}
		if a.redisURL == "" {
			a.redisURL = a.getenv(redisURLEnv)
		}
		if a.redisPrefix == "" {
			a.redisPrefix = a.getenv(redisPrefixEnv)
		}
		if a.redisURL == "" && a.cmd.name != "demo" && a.cmd.name != "completion" && a.cmd.name != "help" {
			return usagef("--backend redis needs --redis-url URL or $%s", redisURLEnv)
		}
	default:
		return usagef("--backend %q: use file or redis", a.backend)
	}
	return nil
}

// redisURLEnv is read when --backend redis is given without --redis-url;
// freshnessEnv when --freshness is not given.
const (
	redisURLEnv    = "VAULTCTL_REDIS_URL"
	redisPrefixEnv = "VAULTCTL_REDIS_PREFIX"
	freshnessEnv   = "VAULTCTL_FRESHNESS"
)

// withGlobals returns a flag set with the command's flags and, after the
// command too, the global flags it does not define itself (vaultctl
// status --json): they set the same variables as before the command. No
// command defines a flag of the same name as a global one (the slot
// flags are --keychain-slot, --tpm-slot), except the old spellings that
// renamedFlags refuses.
func withGlobals(cfs, global *flag.FlagSet) *flag.FlagSet {
	all := flag.NewFlagSet(cfs.Name(), flag.ContinueOnError)
	all.SetOutput(io.Discard)
	cfs.VisitAll(func(f *flag.Flag) { all.Var(f.Value, f.Name, f.Usage) })
	global.VisitAll(func(f *flag.Flag) {
		if all.Lookup(f.Name) == nil && f.Name != "version" {
			all.Var(f.Value, f.Name, f.Usage)
		}
	})
	return all
}

// parseInterspersed parses flags anywhere among the positional arguments
// (vaultctl import NAME FILE --remove-source). Everything after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, s := range args {
		if s == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return append(pos, tail...), nil
}

// fail prints err as one line on stderr (and, with --json, as a JSON
// document on stdout) and returns its exit code.
func (a *app) fail(err error) int {
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	msg := oneLine(err.Error())
	if isCanceled(err) {
		msg = "interrupted: nothing was left half-written; run the command again to finish"
	}
	fmt.Fprintf(a.stderr, "vaultctl: %s\n", msg)
	if a.json && !a.emitted {
		// One document per run: a command that printed its result and
		// then exits non-zero (status with a damaged session) has
		// already said everything on stdout.
		a.writeJSON(map[string]any{"error": map[string]any{
			"code":    code,
			"kind":    errorKind(code),
			"message": msg,
		}})
	}
	return code
}

// writeJSON prints v as one indented JSON document on stdout.
func (a *app) writeJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	a.emitted = true
	_, err = a.stdout.Write(b)
	return err
}

// emit prints a command's result: doc as JSON with --json, else text.
func (a *app) emit(doc any, text func(w io.Writer)) error {
	if a.json {
		return a.writeJSON(doc)
	}
	text(a.stdout)
	return nil
}

// mainUsage prints the top-level help.
func (a *app) mainUsage(w io.Writer) {
	fmt.Fprint(w, `vaultctl keeps authentication sessions sealed at rest.

Usage:
  vaultctl [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Global flags (before or after the command):
`)
	fs := flag.NewFlagSet("vaultctl", flag.ContinueOnError)
	(&app{}).globalFlags(fs)
	printFlags(w, fs)
	fmt.Fprint(w, `
The passphrase comes from --passphrase-file, --passphrase-fd, --passphrase-credential
(a systemd credential), $VAULTCTL_PASSPHRASE or a prompt on the terminal, never
from an argument.

Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 wrong passphrase or key,
5 corrupt or tampered, 6 keychain or TPM unavailable (or the keychain locked),
7 unsafe permissions or a symlink.

Run 'vaultctl COMMAND --help' for one command.
`)
}

// commandUsage prints "vaultctl CMD --help".
func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: vaultctl [GLOBAL FLAGS] %s", c.name)
	if hasFlags(fs) {
		fmt.Fprint(w, " [FLAGS]")
	}
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.help))
	if hasFlags(fs) {
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs)
	}
	fmt.Fprint(w, "\nRun 'vaultctl help' for the global flags and exit codes.\n")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if !hiddenFlag(f) {
			n++
		}
	})
	return n > 0
}

// printFlags prints flags with two dashes, as the contract spells them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if hiddenFlag(f) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if name != "" {
			head += " " + name
		}
		fmt.Fprintf(w, "  %-28s %s", head, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "-1" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

var cmdHelp = &command{
	name:    "help",
	args:    "[COMMAND]",
	summary: "show help for vaultctl or one command",
	help:    "Shows the list of commands, or the help of one command.",
	max:     1,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(_ context.Context, a *app, args []string) error {
			var b strings.Builder
			if len(args) == 0 {
				a.mainUsage(&b)
			} else {
				c := lookupCommand(args[0])
				if c == nil {
					return unknownCommand(args[0])
				}
				cfs := flag.NewFlagSet(c.name, flag.ContinueOnError)
				c.setup(cfs)
				commandUsage(&b, c, cfs)
			}
			return a.emit(map[string]any{"help": b.String()}, func(w io.Writer) {
				io.WriteString(w, b.String())
			})
		}
	},
}
