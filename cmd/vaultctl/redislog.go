package main

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis logs some failures itself, on stderr, as lines of its own
// ("redis: 2026/12/03 ... connection pool: ..."). vaultctl reports every
// error once, as one line: silence the library's logger. It is a
// process-wide setting, which is why the CLI sets it and the library
// packages do not.
func init() { goredis.SetLogger(silentRedisLog{}) }

type silentRedisLog struct{}

func (silentRedisLog) Printf(context.Context, string, ...any) {}
