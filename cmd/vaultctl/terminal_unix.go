//go:build !windows

package main

import "os"

// openTerminal opens the controlling terminal.
func openTerminal() (terminal, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &ttyTerminal{in: f, out: f}, nil
}
