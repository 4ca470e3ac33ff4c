//go:build !windows

package main

func isWindows() bool { return false }
