package session

import (
	"testing"
	"time"
)

// Bounds of limits.go, for the tests of package session_test.
const (
	MaxSessionJSONForTest = maxSessionJSON
	MaxCookiesForTest     = maxCookies
)

// The loopback auth server and the load helpers of the live tests, for the
// multi-process tests of package session_test.

type LiveAuth = liveAuth

func NewLiveAuth(t *testing.T, ttl time.Duration) *LiveAuth { return newLiveAuth(t, ttl) }

func (a *liveAuth) Grant(access, refresh string, exp time.Time) { a.grant(access, refresh, exp) }
func (a *liveAuth) Attempts() int64                             { return a.attempts.Load() }
func (a *liveAuth) Abandoned() int64                            { return a.abandoned.Load() }
func (a *liveAuth) Refreshes() int64                            { return a.refreshes.Load() }

// FirstRefresh returns when the first refresh was served (zero if none).
func (a *liveAuth) FirstRefresh() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.refTimes) == 0 {
		return time.Time{}
	}
	return a.refTimes[0]
}

// Hold makes token requests wait until Release.
func (a *liveAuth) Hold() {
	a.mu.Lock()
	a.hold = make(chan struct{})
	a.mu.Unlock()
}

func (a *liveAuth) Release() {
	a.mu.Lock()
	if a.hold != nil {
		close(a.hold)
		a.hold = nil
	}
	a.mu.Unlock()
}

var (
	LatencyBound = latencyBound
	Hammer       = hammer
	GetOK        = getOK
	Percentile   = percentile

	HammerFigures = hammerFigures
	RoundMs       = roundMs
)
