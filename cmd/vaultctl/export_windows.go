package main

func isWindows() bool { return true }
