// Package fleet holds the fleet test of issue 8: eight real processes share
// one session in a Redis-backed vault and call an API through
// session.Transport while their token needs a refresh. It checks that the
// fleet refreshes exactly once, that no request is refused for a stale
// token, that no cookie a server set is lost, and that when the process
// holding the refresh lease is killed with SIGKILL mid-refresh, the lease
// expires and another process refreshes, again losing nothing.
//
// The tests need a Redis server: run them as
//
//	scripts/with-redis go test ./internal/fleet/
//
// Without SESSIONVAULT_REDIS_URL they skip, except under CI=true or
// SESSIONVAULT_REQUIRE_SERVICES=1, where they fail.
package fleet
