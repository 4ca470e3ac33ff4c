//go:build deps

// Package deps pins modules that several packages of this repository will
// import, so that parallel work does not race on go.mod. It is never built.
package deps

import (
	_ "github.com/99designs/keyring"
	_ "github.com/coder/websocket"
	_ "github.com/creack/pty"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/zalando/go-keyring"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/sync/singleflight"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
)
