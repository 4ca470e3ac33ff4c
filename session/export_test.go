package session

// Bounds of limits.go, for the tests of package session_test.
const (
	MaxSessionJSONForTest = maxSessionJSON
	MaxCookiesForTest     = maxCookies
)
