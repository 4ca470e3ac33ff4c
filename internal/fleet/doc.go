// Package fleet holds the fleet test of issue 8: eight real processes share
// one session in a Redis-backed vault and call an API through
// session.Transport while their token needs a refresh. It checks that the
// fleet refreshes exactly once, that no request is refused for a stale
// token, that no cookie a server set is lost, and that when the process
// holding the refresh lease is killed with SIGKILL mid-refresh, the lease
// expires and another process refreshes, again losing nothing.
//
// TestFailover (failover_test.go) is the fleet of issue 16: writers doing
// compare-and-set updates, with and without replica acknowledgment, and
// lease refreshers, while the master of a Sentinel setup is SIGKILLed again
// and again; it ends with one line
//
//	failover: runs=R failovers=F acked=A lost_without_ack=L lost_with_ack=K double_refreshes=D panics=P
//
// The tests need a Redis server, and TestFailover the Sentinel setup of
// scripts/with-redis --sentinel: run them as
//
//	scripts/with-redis --sentinel go test ./internal/fleet/
//	scripts/with-redis --sentinel go test -run TestFailover -v ./internal/fleet/
//	SESSIONVAULT_LONG=1 scripts/with-redis --sentinel go test -run TestFailover -v ./internal/fleet/
//
// Without SESSIONVAULT_REDIS_URL (SESSIONVAULT_SENTINEL_ADDRS) they skip, except under CI=true or
// SESSIONVAULT_REQUIRE_SERVICES=1, where they fail.
package fleet
