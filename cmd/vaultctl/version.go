package main

import (
	"context"
	"flag"
	"io"
	"runtime/debug"
	"strings"
)

// buildVersion describes the running binary from its embedded build
// information: the module version ("(devel)" for a build from a checkout),
// the VCS revision and whether the tree had uncommitted changes.
func buildVersion() map[string]string {
	v := map[string]string{"version": "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v["version"] = info.Main.Version
	v["go"] = info.GoVersion
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v["revision"] = s.Value
		case "vcs.time":
			v["time"] = s.Value
		case "vcs.modified":
			v["modified"] = s.Value
		}
	}
	return v
}

// versionLine is the one line "vaultctl version" prints.
func versionLine(v map[string]string) string {
	var b strings.Builder
	b.WriteString("vaultctl ")
	b.WriteString(v["version"])
	if r := v["revision"]; r != "" {
		b.WriteString(" (")
		b.WriteString(r)
		if v["modified"] == "true" {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	if g := v["go"]; g != "" {
		b.WriteString(" ")
		b.WriteString(g)
	}
	return b.String()
}

var cmdVersion = &command{
	name:    "version",
	summary: "print the version of vaultctl",
	help:    "Prints the module version, the VCS revision and the Go version vaultctl was built with.",
	max:     0,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(_ context.Context, a *app, _ []string) error {
			return a.printVersion()
		}
	},
}

func (a *app) printVersion() error {
	v := buildVersion()
	m := make(map[string]any, len(v))
	for k, s := range v {
		m[k] = s
	}
	return a.emit(m, func(w io.Writer) {
		io.WriteString(w, versionLine(v)+"\n")
	})
}

// unknownCommand is the usage error for a command name that is not
// listed, with a suggestion when one is close. "vaultctl NAME" and
// "vaultctl help NAME" both use it.
func unknownCommand(name string) error {
	if s := suggestCommand(name); s != "" {
		return usagef("unknown command %q: did you mean %q? run 'vaultctl help' for the list", name, s)
	}
	return usagef("unknown command %q: run 'vaultctl help' for the list", name)
}

// suggestCommand returns the listed command closest to a mistyped name,
// or "" when none is within two edits.
func suggestCommand(name string) string {
	best, bestD := "", 3
	for _, c := range commands {
		if d := editDistance(name, c.name); d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
