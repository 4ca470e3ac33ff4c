package main

import "golang.org/x/sys/unix"

const (
	echoGetTermios = unix.TCGETS
	echoSetTermios = unix.TCSETS
)
