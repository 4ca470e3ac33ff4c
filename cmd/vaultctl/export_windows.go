package main

const oNoFollow = 0

func isWindows() bool { return true }
