//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// echoOff is a no-op where x/term's ReadPassword is the only echo control
// (Windows' console reads the line with echo off itself).
func echoOff(fd int) error { return nil }
