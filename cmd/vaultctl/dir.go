package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// dirEnv names the environment variable that sets the vault folder when
// --dir is not given.
const dirEnv = "VAULTCTL_DIR"

// appName is the folder name under the user's data folder.
const appName = "sessionvault"

// defaultDir returns the vault folder when --dir is not given:
// $VAULTCTL_DIR, else the user's data folder: $XDG_DATA_HOME/sessionvault
// (~/.local/share/sessionvault when XDG_DATA_HOME is unset or relative, as
// the XDG spec says) on Unix, ~/Library/Application Support/sessionvault
// on macOS, %LocalAppData%\sessionvault on Windows (local, not roaming:
// sealed sessions are tied to a key in this machine's keychain).
func defaultDir(getenv func(string) string) (string, error) {
	if d := getenv(dirEnv); d != "" {
		return d, nil
	}
	switch runtime.GOOS {
	case "windows":
		if d := getenv("LocalAppData"); d != "" {
			return filepath.Join(d, appName), nil
		}
		return "", errors.New("%LocalAppData% is not set: use --dir or $" + dirEnv)
	case "darwin", "ios", "plan9":
		d, err := os.UserConfigDir()
		if err != nil {
			return "", withHint(err, "use --dir or $"+dirEnv)
		}
		return filepath.Join(d, appName), nil
	}
	if d := getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, appName), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("neither $XDG_DATA_HOME nor $HOME is set: use --dir or $" + dirEnv)
	}
	return filepath.Join(home, ".local", "share", appName), nil
}

// holdsNothing reports whether dir is a real folder (not a symlink) that
// holds no file at any depth: no vault, only empty folders if anything
// (what an interrupted init leaves). It reads at most a few entries.
func holdsNothing(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	return emptyTree(dir, 2)
}

func emptyTree(dir string, depth int) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	entries, err := f.ReadDir(8)
	if err != nil && len(entries) == 0 {
		return err == io.EOF
	}
	if len(entries) == 8 || depth == 0 {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() || !emptyTree(filepath.Join(dir, e.Name()), depth-1) {
			return false
		}
	}
	return true
}
